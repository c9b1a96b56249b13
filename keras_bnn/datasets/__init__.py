"""Real datasets through tensorflow-datasets, offline when the raw files are at hand."""

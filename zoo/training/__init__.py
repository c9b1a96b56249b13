"""Training of the zoo's pretrained models: ``python -m keras_bnn.zoo.training.train NAME`` reproduces each one.

* ``recipes``: the recipes as data (``ImageRecipe``, ``LanguageModelRecipe``, ``SentenceClassifierRecipe``);
* ``images``, ``language_model``, ``sentence_classifier``: one training loop per kind of recipe;
* ``export``: the compact weights file and the card's fields, measured from it;
* ``distribution``: tf.distribute strategies; ``train``: the command line.
"""

"""Training scripts of the zoo models: `python -m keras_bnn.zoo.training.train NAME`."""

"""keras_bnn.zoo: registry of binary architectures and pretrained weights trained here."""

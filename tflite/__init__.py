"""keras_bnn.tflite: convert Keras BNNs to bitpacked Larq Compute Engine flatbuffers."""

"""Imported first by keras_bnn's Keras 3 modules, before ``keras``: a missing JAX or PyTorch backend then fails
with a message that names the extra to install (`keras_bnn.backends.check_backend`) instead of Keras' bare
ImportError. Runs once per process (a failed check runs again on the next import)."""

from keras_bnn.backends import check_backend

check_backend()

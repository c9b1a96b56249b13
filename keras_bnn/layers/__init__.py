"""Binary Keras layers that extend larq's."""

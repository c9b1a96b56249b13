"""The zoo's model families: each module holds its builders and their entries (importing this registers them).

* ``binarynet``: BinaryNet's MNIST MLP; ``binary_cnn``: a small binary CNN (larq's MNIST example layout);
* ``birealnet``: a small Bi-Real Net (Fashion-MNIST) and Bi-Real Net-18 (ImageNet, definition only);
* ``xnornet``: a small XNOR-Net (Fashion-MNIST) and XNOR-Net-18 (ImageNet, definition only);
* ``gru_lm``: a binary GRU character language model (Tiny Shakespeare);
* ``transformer``: a binary Transformer sentence classifier (GLUE SST-2).
"""

from keras_bnn.zoo.models import binarynet, binary_cnn, birealnet, gru_lm, transformer, xnornet  # noqa: F401

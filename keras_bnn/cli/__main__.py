"""`python -m keras_bnn.cli` = the `keras-bnn` command."""

import sys

from keras_bnn.cli import main

sys.exit(main())

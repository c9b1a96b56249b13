"""Training recipes of the zoo's pretrained models, as data: what `keras_bnn.zoo.training.train` runs."""

from __future__ import annotations

import dataclasses

__all__ = ["Recipe", "RECIPES", "TRAIN_SPLIT", "VALIDATION_SPLIT", "TEST_SPLIT"]

TRAIN_SPLIT = "train[:90%]"
VALIDATION_SPLIT = "train[90%:]"  # Held out from training; watched for tuning. Test is touched once, at the end.
TEST_SPLIT = "test"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one zoo model is trained.

    Attributes:
        epochs: Default number of epochs.
        batch_size: Training batch size.
        learning_rate: Peak Adam learning rate; it decays to 0 along a cosine over all steps.
        warmup_epochs: Linear warm-up before the cosine (0 for none).
        shift: Random translation augmentation, in pixels (0 for none): pad by `shift`, random crop back.
        flip: Random horizontal flips (valid for clothes, not for digits).
        float_twin: Also train the float twin (same layers, no quantizers) and report its accuracy.
    """

    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3
    warmup_epochs: int = 0
    shift: int = 0
    flip: bool = False
    float_twin: bool = False


RECIPES: dict[str, Recipe] = {
    "binarynet_mlp.mnist": Recipe(epochs=20, batch_size=100, learning_rate=1e-3, shift=2),
    "binary_cnn.mnist": Recipe(epochs=12, batch_size=100, learning_rate=2e-3, shift=2),
    "birealnet_small.fashion_mnist": Recipe(epochs=10, batch_size=100, learning_rate=2e-3, flip=True, float_twin=True),
    "xnornet_small.fashion_mnist": Recipe(epochs=6, batch_size=100, learning_rate=2e-3, flip=True, float_twin=True),
}

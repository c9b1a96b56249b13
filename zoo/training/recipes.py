"""Training recipes of the zoo's pretrained models, as data: what ``keras_bnn.zoo.training.train`` runs.

Each zoo entry (``keras_bnn.zoo.entry(name).recipe``) holds one of these. Every recipe also trains the float twin
(the same layers without quantizers) when its `float_twin` is set, for the card's comparison.
"""

from __future__ import annotations

import dataclasses

__all__ = ["ImageRecipe", "LanguageModelRecipe", "SentenceClassifierRecipe", "TEST_SPLIT", "TRAIN_SPLIT",
           "VALIDATION_SPLIT"]

TRAIN_SPLIT = "train[:90%]"
VALIDATION_SPLIT = "train[90%:]"  # Held out from training; watched for tuning. Test is touched once, at the end.
TEST_SPLIT = "test"


@dataclasses.dataclass(frozen=True)
class ImageRecipe:
    """How an image classifier is trained: Adam on `TRAIN_SPLIT`, checked on `VALIDATION_SPLIT`.

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


@dataclasses.dataclass(frozen=True)
class LanguageModelRecipe:
    """How a character language model is trained: truncated BPTT on contiguous streams of the train split.

    The train text is cut into `batch_size` contiguous streams read `sequence_length` characters per step with the
    recurrent state carried across steps; `steps` is rounded up to whole passes over the streams. Adam with cosine
    decay (to `final_learning_rate_fraction` of the peak) and gradient-norm clipping. Bits per character are then
    streamed over `eval_streams` contiguous streams of each split, the state carried.

    Attributes:
        steps: Training steps (rounded up to whole passes).
        batch_size: Streams trained in parallel.
        sequence_length: Characters per step.
        learning_rate: Peak Adam learning rate.
        final_learning_rate_fraction: Cosine decay floor, as a fraction of the peak.
        clipnorm: Gradient-norm clipping.
        eval_streams: Streams of the evaluation.
        float_twin: Also train Keras' float GRU of the same size in the same run.
    """

    steps: int
    batch_size: int = 64
    sequence_length: int = 100
    learning_rate: float = 3e-3
    final_learning_rate_fraction: float = 0.05
    clipnorm: float = 1.0
    eval_streams: int = 32
    float_twin: bool = True


@dataclasses.dataclass(frozen=True)
class SentenceClassifierRecipe:
    """How a sentence classifier is trained: a float teacher, then the binary model initialised from it and
    distilled from its logits, each keeping the epoch with the best accuracy on held-out train sentences.

    Attributes:
        holdout: Train sentences held out (by a seeded permutation) to choose epochs.
        vocabulary: Words of the tokenizer (adapted on the training part only).
        batch_size: Sentences per batch (batched by similar length, trimmed to the longest).
        float_epochs: Epochs of the float teacher.
        float_learning_rate: Its peak Adam learning rate (cosine decay to 0).
        binary_epochs: Epochs of the binary student.
        binary_learning_rate: Its peak Adam learning rate.
        temperature: Distillation temperature.
        label_weight: Weight of the label loss (the rest is the teacher's soft targets).
    """

    holdout: int = 5000
    vocabulary: int = 12000
    batch_size: int = 128
    float_epochs: int = 2
    float_learning_rate: float = 1e-3
    binary_epochs: int = 1
    binary_learning_rate: float = 1e-3
    temperature: float = 2.0
    label_weight: float = 0.5

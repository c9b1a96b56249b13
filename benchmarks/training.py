"""Training techniques for binary networks compared on Fashion-MNIST, one architecture and one epoch budget.

Every run trains the same network from scratch: a real 3×3 convolution (48 channels) + BatchNorm + max-pool to
14×14, then four binary 3×3 convolutions (48 and 48 channels at 14×14, 96 with stride 2 and 96 at 7×7), each
followed by BatchNorm, and a real dense classifier on the flattened 7×7×96 features (10 logits): the layout of the
zoo's `birealnet_small.fashion_mnist`, without pooling after a binary convolution and without a binary bottleneck
before the classifier. Binary layers binarize their inputs (sign) and kernels; the techniques change how (see
TECHNIQUES). Common protocol: batch 128, Adam with cosine learning-rate decay from 2e-3 (Bop: Bop on the binary
kernels, the same Adam on the rest), the same number of epochs for all (two-step splits it), inputs scaled to the
interval from -1 to 1, random horizontal flips (off with `--no-flip`); after training, the BatchNorm statistics of
every run are re-estimated with `keras_bnn.legacy.training.reestimate_batchnorm` on 100 training batches of 256 (both
accuracies are recorded; the float model is re-estimated before it serves as teacher). The float baseline has the
same layers with real weights and ReLU activations; it is also the teacher of the distillation runs. The last run
combines the two techniques that help most alone: a Bi-Real student distilled from the float model.

Writes benchmarks/results/training.json and prints the table and the best binary result's gap to float.

Run in the background (on 2 cores an epoch takes 35 s for the float model, 40-48 s for a binary one, 50-60 s
with distillation's teacher pass; a whole run 400-770 s, the 11 runs 2 h 03 min):
    nohup .venv/bin/python benchmarks/training.py --epochs 10 > /tmp/training_logs/training.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time
from collections.abc import Callable

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import larq
import numpy as np
import tensorflow as tf

from keras_bnn.legacy.layers import BiRealConv2D, XNORConv2D
from keras_bnn.legacy.quantizers import StochasticSign
from keras_bnn.legacy.training import (
    BinaryRelaxScheduler,
    BinaryRelaxSign,
    Distiller,
    PCNNConv2D,
    case_optimizer,
    reestimate_batchnorm,
    requantize,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

BATCH_SIZE = 128
LEARNING_RATE = 2e-3
LOSS = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# -- one architecture, with the binary layers supplied per technique -------------------------------------------
BinaryConv = Callable[[int, int], tf.keras.layers.Layer]
BLOCKS = ((48, 1), (48, 1), (96, 2), (96, 1))  # (filters, stride) of the four 3x3 convolutions after the stem


def binary_kwargs(kernel_quantizer: object = "ste_sign") -> dict:
    return dict(input_quantizer="ste_sign", kernel_quantizer=kernel_quantizer, kernel_constraint="weight_clip",
                use_bias=False)


def network(conv: BinaryConv | None, conv_has_norm: bool = False, name: str = "network") -> tf.keras.Model:
    """The benchmark network; `conv(filters, strides)` makes a binary 3×3 conv (None: the float baseline)."""
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(48, 3, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
    if conv is None:
        x = tf.keras.layers.ReLU()(x)
    x = tf.keras.layers.MaxPool2D()(x)
    for filters, strides in BLOCKS:
        if conv is None:
            x = tf.keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        else:
            x = conv(filters, strides)(x)
        if not conv_has_norm:
            x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
        if conv is None:
            x = tf.keras.layers.ReLU()(x)
    x = tf.keras.layers.Flatten()(x)
    outputs = tf.keras.layers.Dense(10)(x)
    return tf.keras.Model(inputs, outputs, name=name)


def ste_conv(kernel_quantizer: Callable[[], object] = lambda: "ste_sign") -> BinaryConv:
    return lambda filters, strides: larq.layers.QuantConv2D(filters, 3, strides=strides, padding="same",
                                                            pad_values=1.0, **binary_kwargs(kernel_quantizer()))


def bireal_conv(filters: int, strides: int) -> tf.keras.layers.Layer:
    return BiRealConv2D(filters, strides=strides, momentum=0.9)


def adam(steps: int) -> tf.keras.optimizers.legacy.Adam:
    return tf.keras.optimizers.legacy.Adam(tf.keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps))


# -- the runs ---------------------------------------------------------------------------------------------------
class Runner:
    def __init__(self, epochs: int, data: dict[str, np.ndarray], flip: bool = True, seed: int = 0) -> None:
        self.epochs = epochs
        self.data = data
        self.flip = flip
        self.seed = seed
        self.steps_per_epoch = math.ceil(len(data["x_train"]) / BATCH_SIZE)
        self.estimation = tf.data.Dataset.from_tensor_slices(data["x_train"]).batch(256)
        self.teacher: tf.keras.Model | None = None

    def training_data(self) -> tf.data.Dataset:
        """Shuffled batches of the training split, randomly flipped left-right unless `flip` is off."""
        data = tf.data.Dataset.from_tensor_slices((self.data["x_train"], self.data["y_train"]))
        data = data.shuffle(len(self.data["x_train"]), seed=self.seed, reshuffle_each_iteration=True)
        if self.flip:
            data = data.map(lambda x, y: (tf.image.random_flip_left_right(x), y),
                            num_parallel_calls=tf.data.AUTOTUNE)
        return data.batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)

    def fit(self, model: tf.keras.Model, epochs: int | None = None, callbacks=(), initial_epoch: int = 0) -> None:
        epochs = self.epochs if epochs is None else epochs
        model.fit(self.training_data(), epochs=initial_epoch + epochs, initial_epoch=initial_epoch,
                  callbacks=list(callbacks), verbose=2)

    def accuracy(self, model: tf.keras.Model) -> float:
        logits = model.predict(self.data["x_test"], batch_size=1000, verbose=0)
        return float(np.mean(np.argmax(logits, axis=-1) == self.data["y_test"]))

    def compiled(self, model: tf.keras.Model, optimizer=None, steps: int | None = None) -> tf.keras.Model:
        model.compile(optimizer or adam(steps or self.epochs * self.steps_per_epoch), LOSS)
        return model

    # Each technique returns the trained model.
    def float(self) -> tf.keras.Model:
        model = self.compiled(network(None, name="float"))
        self.fit(model)
        self.teacher = model
        return model

    def ste_adam(self) -> tf.keras.Model:
        model = self.compiled(network(ste_conv()))
        self.fit(model)
        return model

    def bop(self) -> tf.keras.Model:
        model = network(ste_conv())
        steps = self.epochs * self.steps_per_epoch
        gamma = tf.keras.optimizers.schedules.CosineDecay(1e-3, steps)
        optimizer = case_optimizer(model, binary=larq.optimizers.Bop(threshold=1e-6, gamma=gamma), real=adam(steps))
        self.fit(self.compiled(model, optimizer))
        return model

    def binary_relax(self) -> tf.keras.Model:
        model = self.compiled(network(ste_conv(lambda: BinaryRelaxSign(1.0))))
        # Short budget: λ = 1, 10, 100, ... per epoch, exact binary weights (phase II) in the last epoch.
        self.fit(model, callbacks=[BinaryRelaxScheduler(growth=10.0, quantize_epoch=self.epochs - 1)])
        return model

    def stochastic(self) -> tf.keras.Model:
        model = self.compiled(network(ste_conv(StochasticSign)))
        self.fit(model)
        return model

    def bireal(self) -> tf.keras.Model:
        model = self.compiled(network(bireal_conv, conv_has_norm=True))
        self.fit(model)
        return model

    def xnor(self) -> tf.keras.Model:
        model = self.compiled(network(lambda filters, strides: XNORConv2D(filters, 3, strides=strides,
                                                                          padding="same")))
        self.fit(model)
        return model

    def pcnn(self) -> tf.keras.Model:
        model = self.compiled(network(lambda filters, strides: PCNNConv2D(filters, 3, strides=strides,
                                                                          projection_loss_weight=1e-4)))
        self.fit(model)
        return model

    def _distilled(self, student: tf.keras.Model) -> tf.keras.Model:
        if self.teacher is None:
            raise RuntimeError("the float run (the teacher) must come before distillation")
        distiller = Distiller(self.teacher, student, temperature=4.0, alpha=0.5)
        distiller.compile(adam(self.epochs * self.steps_per_epoch), loss=LOSS)
        self.fit(distiller)
        return student

    def distillation(self) -> tf.keras.Model:
        return self._distilled(network(ste_conv(), name="student"))

    def bireal_distillation(self) -> tf.keras.Model:
        return self._distilled(network(bireal_conv, conv_has_norm=True, name="bireal_student"))

    def two_step(self) -> tf.keras.Model:
        first = self.epochs // 2
        step1 = requantize(network(ste_conv()), kernel_quantizer=None, kernel_constraint=None)
        self.fit(self.compiled(step1, steps=first * self.steps_per_epoch), epochs=first)
        step2 = requantize(step1, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
        rest = self.epochs - first
        self.fit(self.compiled(step2, steps=rest * self.steps_per_epoch), epochs=rest)
        return step2


TECHNIQUES = {
    "float": "float baseline: real weights and ReLU activations (also the distillation teacher)",
    "ste_adam": "sign activations and weights, straight-through estimator, latent weights clipped, Adam",
    "bop": "Bop on the binary kernels (γ 1e-3 cosine-decayed, τ 1e-6), Adam on the rest (case_optimizer)",
    "binary_relax": "BinaryRelax kernels: λ ×10 per epoch from 1, exact binary weights in the last epoch",
    "stochastic": "stochastic binarization of the weights (StochasticSign) while training, sign at inference",
    "bireal": "Bi-Real blocks: real shortcut around each binary conv, ApproxSign, magnitude-aware weights",
    "xnor": "XNOR-Net convolutions: weights scaled by mean|W| per output channel",
    "pcnn": "PCNN projection convolutions (J = 1, λ = 1e-4 projection loss)",
    "distillation": "STE network distilled from the float model (T = 4, α = 0.5)",
    "two_step": "step 1: binary activations, real weights (half the epochs); step 2: both binary",
    "bireal_distillation": "Bi-Real network (as in bireal) distilled from the float model (T = 4, α = 0.5)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--techniques", nargs="+", default=list(TECHNIQUES), choices=list(TECHNIQUES))
    parser.add_argument("--train-subset", type=int, default=None, help="use the first N training images (smoke)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    parser.add_argument("--output", default=str(RESULTS / "training.json"))
    args = parser.parse_args()
    if args.epochs < 1 or ("two_step" in args.techniques and args.epochs < 2):
        parser.error(f"--epochs must be >= 1 (>= 2 with two_step, which splits it), got {args.epochs}")
    students = [t for t in args.techniques if t in ("distillation", "bireal_distillation")]
    if students and ("float" not in args.techniques
                     or args.techniques.index("float") > args.techniques.index(students[0])):
        parser.error(f"{students[0]} needs the float run (its teacher) earlier in --techniques")

    x_train, y_train = keras_bnn.datasets.load_images("fashion_mnist", "train", signed=True)
    x_test, y_test = keras_bnn.datasets.load_images("fashion_mnist", "test", signed=True)
    if args.train_subset:
        x_train, y_train = x_train[: args.train_subset], y_train[: args.train_subset]
    data = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    runner = Runner(args.epochs, data, flip=args.flip, seed=args.seed)
    result = {
        "dataset": "fashion_mnist",
        "epochs": args.epochs,
        "augmentation": "random horizontal flips" if args.flip else "none",
        "float_test_accuracy": None,
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
        "runs": [],
        "command": "python benchmarks/training.py " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
    }
    for technique in args.techniques:
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(args.seed)
        print(f"== {technique}: {TECHNIQUES[technique]}", flush=True)
        start = time.time()
        model = getattr(runner, technique)()
        seconds = time.time() - start
        run = {"technique": technique, "description": TECHNIQUES[technique]}
        run["test_accuracy_before_bn_reestimation"] = runner.accuracy(model)
        reestimate_batchnorm(model, runner.estimation, num_batches=100)
        run["test_accuracy"] = runner.accuracy(model)
        if technique == "float":
            result["float_test_accuracy"] = run["test_accuracy"]
        run["train_seconds"] = round(seconds, 1)
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
        pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'technique':<21}{'test acc':>10}{'before BN re-est.':>20}{'train s':>10}")
    for run in result["runs"]:
        before = run["test_accuracy_before_bn_reestimation"]
        print(f"{run['technique']:<21}{run['test_accuracy']:>10.4f}{before:>20.4f}{run['train_seconds']:>10.1f}")
    binary = [run for run in result["runs"] if run["technique"] != "float"]
    if binary and result["float_test_accuracy"] is not None:
        best = max(binary, key=lambda run: run["test_accuracy"])
        gap = result["float_test_accuracy"] - best["test_accuracy"]
        result["best_binary"] = {"technique": best["technique"], "test_accuracy": best["test_accuracy"],
                                 "gap_to_float_points": round(100 * gap, 2)}
        print(f"best binary: {best['technique']} {best['test_accuracy']:.4f}, "
              f"{100 * gap:.2f} points below float {result['float_test_accuracy']:.4f}")
        pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

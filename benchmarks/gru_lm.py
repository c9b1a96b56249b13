"""Binary GRU vs float GRU character language models on Tiny Shakespeare (test bits per character).

Both models are ``Embedding -> GRU x layers -> Dense`` with the same sizes; the binary one uses
``keras_bnn.layers.BinaryGRU`` (binary kernels and binary matmul inputs, real gates and state, learned gate
scale); the embedding and the output layer are real in both (the embedding's output is binarized by the first
BinaryGRU's input quantizer). Training: Adam with cosine decay and the same number of steps for both, on
shuffled windows of ``seq_len`` characters or, with ``--tbptt``, on ``batch_size`` contiguous streams with the
state carried across batches (truncated BPTT). Test BPC is measured over the whole test split cut into
``--eval-streams`` contiguous streams, the state carried across windows (every character but the first of each
stream is predicted with all its past); ``test_bpc_windowed`` restarts from a zero state every ``seq_len``.

Each model's batch-1 step model (``keras_bnn.text.step_model``) is converted with ``keras_bnn.tflite.convert``;
the flatbuffer size and bitpacked share come from ``keras_bnn.tflite.inspect``, and text is sampled from it
and from Keras. ``--ablation-steps N`` also trains a small binary model with and without the gate scale.

Run (in the background, ~30 min on 2 shared cores):
    nohup nice -n 10 .venv/bin/python benchmarks/gru_lm.py --steps 450 --log-every 50 --tbptt \
        --ablation-steps 150 > /tmp/gru_logs/gru_lm.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time
import warnings

import keras_bnn  # noqa: F401  (first: selects tf-keras)
import keras_bnn.tflite.converter
import keras_bnn.tflite.inspection
import numpy as np
import tensorflow as tf
from keras_bnn.layers.recurrent import BinaryGRU
from keras_bnn.text import CharVocabulary, FlatbufferStepper, KerasStepper, generate, step_model

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

PROMPT = "ROMEO:\n"


def load_texts() -> dict[str, str]:
    """The three Tiny Shakespeare splits as strings (through keras_bnn.datasets / tfds)."""
    return {split: keras_bnn.datasets.load("tiny_shakespeare", split).get_single_element().numpy().decode()
            for split in ("train", "validation", "test")}


def build_lm(kind: str, vocabulary_size: int, args, *, batch_size: int | None = None, stateful: bool = False,
             gate_scale: bool = True, units: int | None = None) -> tf.keras.Model:
    """``Embedding -> (Binary)GRU x args.layers -> Dense``; `kind` is "binary" or "float"."""
    units = units or args.units
    layers = [tf.keras.Input(batch_shape=(batch_size, None), dtype="int32"),
              tf.keras.layers.Embedding(vocabulary_size, args.embedding)]
    for _ in range(args.layers):
        if kind == "binary":
            layers.append(BinaryGRU(units, return_sequences=True, stateful=stateful, gate_scale=gate_scale,
                                    dropout=args.dropout))
        else:
            layers.append(tf.keras.layers.GRU(units, return_sequences=True, stateful=stateful, dropout=args.dropout))
    layers.append(tf.keras.layers.Dense(vocabulary_size))
    return tf.keras.Sequential(layers, name=f"{kind}_gru_lm")


def windows(ids: np.ndarray, seq_len: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled (input, target) windows of seq_len characters, repeated forever."""
    dataset = tf.data.Dataset.from_tensor_slices(ids).batch(seq_len + 1, drop_remainder=True)
    dataset = dataset.map(lambda chunk: (chunk[:-1], chunk[1:]))
    return dataset.shuffle(20_000, seed=seed).repeat().batch(batch_size, drop_remainder=True).prefetch(2)


def streams(ids: np.ndarray, seq_len: int, batch_size: int) -> tuple[tf.data.Dataset, int]:
    """Truncated-BPTT batches: row i of every batch continues row i of the previous batch (one epoch of
    ``steps`` batches, repeated); returns the dataset and ``steps``."""
    length = (len(ids) - 1) // batch_size
    steps = length // seq_len
    rows = np.stack([ids[i * length:i * length + steps * seq_len + 1] for i in range(batch_size)])
    x = rows[:, :-1].reshape(batch_size, steps, seq_len).transpose(1, 0, 2)
    y = rows[:, 1:].reshape(batch_size, steps, seq_len).transpose(1, 0, 2)
    return tf.data.Dataset.from_tensor_slices((x, y)).repeat().prefetch(2), steps


class _Progress(tf.keras.callbacks.Callback):
    """Prints the mean training loss every `every` steps; resets RNN states at each epoch (TBPTT)."""

    def __init__(self, label: str, every: int, total: int, reset_states: bool):
        super().__init__()
        self.label, self.every, self.total, self.reset = label, every, total, reset_states
        self.start, self.step, self.losses = time.perf_counter(), 0, []

    def on_epoch_begin(self, epoch, logs=None):
        if self.reset:
            self.model.reset_states()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.losses.append(logs["loss"])
        if self.step % self.every == 0 or self.step == self.total:
            loss = float(np.mean(self.losses[-self.every:]))
            print(f"[{self.label}] step {self.step}/{self.total}: train loss {loss:.4f} "
                  f"({loss / math.log(2):.3f} bpc), {time.perf_counter() - self.start:.0f} s", flush=True)


def train(model: tf.keras.Model, ids: np.ndarray, args, steps: int, label: str) -> float:
    """Train for `steps` steps (TBPTT streams when the model is stateful, else shuffled windows)."""
    schedule = tf.keras.optimizers.schedules.CosineDecay(args.learning_rate, steps, alpha=0.05)
    model.compile(tf.keras.optimizers.Adam(schedule, clipnorm=1.0),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stateful = any(getattr(layer, "stateful", False) for layer in model.layers)
    if stateful:
        dataset, per_epoch = streams(ids, args.seq_len, args.batch_size)
    else:
        dataset, per_epoch = windows(ids, args.seq_len, args.batch_size, args.seed), steps
    per_epoch = min(per_epoch, steps)
    epochs = -(-steps // per_epoch)
    progress = _Progress(label, args.log_every, epochs * per_epoch, reset_states=stateful)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=per_epoch, epochs=epochs, verbose=0, callbacks=[progress])
    return time.perf_counter() - start


def streamed_bpc(trained: tf.keras.Model, ids: np.ndarray, args) -> float:
    """Bits per character over `ids`, in `args.eval_streams` contiguous streams, state carried across windows."""
    n_streams = args.eval_streams
    length = (len(ids) - 1) // n_streams
    model = build_lm(_kind(trained), trained.layers[-1].units, args, batch_size=n_streams, stateful=True,
                     **_variant(trained))
    model.set_weights(trained.get_weights())
    model.reset_states()
    inputs = np.stack([ids[i * length:(i + 1) * length] for i in range(n_streams)])
    targets = np.stack([ids[i * length + 1:(i + 1) * length + 1] for i in range(n_streams)])
    total, count = 0.0, 0
    for start in range(0, length, args.seq_len):
        logits = model(inputs[:, start:start + args.seq_len], training=False)
        loss = tf.keras.losses.sparse_categorical_crossentropy(targets[:, start:start + args.seq_len], logits,
                                                               from_logits=True)
        total += float(tf.reduce_sum(loss))
        count += int(np.prod(loss.shape))
    return total / count / math.log(2)


def windowed_bpc(trained: tf.keras.Model, ids: np.ndarray, args) -> float:
    """Bits per character over windows of seq_len characters, each from a zero state (as in window training)."""
    count = (len(ids) - 1) // args.seq_len
    inputs = ids[:count * args.seq_len].reshape(count, args.seq_len)
    targets = ids[1:count * args.seq_len + 1].reshape(count, args.seq_len)
    model = build_lm(_kind(trained), trained.layers[-1].units, args, **_variant(trained))
    model.set_weights(trained.get_weights())
    logits = model.predict(inputs, batch_size=256, verbose=0)
    loss = tf.keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return float(tf.reduce_mean(loss)) / math.log(2)


def _kind(model: tf.keras.Model) -> str:
    return "binary" if isinstance(model.layers[1], BinaryGRU) else "float"


def _variant(model: tf.keras.Model) -> dict:
    """The build_lm keyword arguments that reproduce `model`'s recurrent layers."""
    rnn = model.layers[1]
    variant = {"units": rnn.units}
    if isinstance(rnn, BinaryGRU):
        variant["gate_scale"] = rnn.gate_scale
    return variant


def model_bits(model: tf.keras.Model) -> int:
    """Weight storage in bits as larq.models.summary counts it (a QuantizedVariable's precision, else 32)."""
    return int(sum(getattr(w, "precision", 32) * w.shape.num_elements() for w in model.weights))


def _training_shape(args) -> dict:
    return {"batch_size": args.batch_size, "stateful": True} if args.tbptt else {}


def _unbatched(kind: str, model: tf.keras.Model, vocabulary: CharVocabulary, args) -> tf.keras.Model:
    """A non-stateful, any-batch copy of a (possibly stateful, fixed-batch) trained model."""
    copy = build_lm(kind, vocabulary.size, args, **_variant(model))
    copy.set_weights(model.get_weights())
    return copy


def run_model(kind: str, texts: dict, vocabulary: CharVocabulary, args) -> dict:
    tf.keras.utils.set_random_seed(args.seed)
    model = build_lm(kind, vocabulary.size, args, **_training_shape(args))
    seconds = train(model, vocabulary.encode(texts["train"]), args, args.steps, kind)
    if args.save_dir:
        model.save_weights(str(pathlib.Path(args.save_dir) / f"{kind}.weights.h5"))
    test_bpc = streamed_bpc(model, vocabulary.encode(texts["test"]), args)
    validation_bpc = streamed_bpc(model, vocabulary.encode(texts["validation"]), args)
    test_windowed = windowed_bpc(model, vocabulary.encode(texts["test"]), args)
    print(f"[{kind}] test {test_bpc:.4f} bpc (streamed), {test_windowed:.4f} bpc (windows from a zero state); "
          f"validation {validation_bpc:.4f} bpc", flush=True)
    model = _unbatched(kind, model, vocabulary, args)

    step = step_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", keras_bnn.tflite.converter.NotBitpackedWarning)  # the float model
        flatbuffer = keras_bnn.tflite.converter.convert(step)
    report = keras_bnn.tflite.inspection.inspect(flatbuffer)
    print(report, flush=True)
    samples = {}
    for name, stepper in (("keras", KerasStepper(step)), ("flatbuffer", FlatbufferStepper(flatbuffer))):
        samples[name] = {
            "greedy": generate(stepper, vocabulary, PROMPT, args.sample_length),
            "temperature_0.8_seed_0": generate(stepper, vocabulary, PROMPT, args.sample_length,
                                               temperature=0.8, seed=0),
        }
    print(f"[{kind}] sample (flatbuffer, temperature 0.8, seed 0):\n"
          f"{samples['flatbuffer']['temperature_0.8_seed_0']}", flush=True)
    return {
        "test_bpc": round(test_bpc, 4),
        "test_bpc_windowed": round(test_windowed, 4),
        "validation_bpc": round(validation_bpc, 4),
        "params": int(model.count_params()),
        "model_bits": model_bits(model),
        "flatbuffer_bytes": len(flatbuffer),
        "bitpacked_share": report.bitpacked_share,
        "macs_per_char": report.macs,
        "train_seconds": round(seconds, 1),
        "samples": samples,
    }


def ablation(texts: dict, vocabulary: CharVocabulary, args) -> dict:
    """Small binary models with and without the learned gate scale (same seed, data and steps)."""
    results = {"units": args.ablation_units, "steps": args.ablation_steps}
    ids = vocabulary.encode(texts["train"])
    for gate_scale in (True, False):
        tf.keras.utils.set_random_seed(args.seed)
        model = build_lm("binary", vocabulary.size, args, gate_scale=gate_scale, units=args.ablation_units,
                         **_training_shape(args))
        train(model, ids, args, args.ablation_steps, f"ablation gate_scale={gate_scale}")
        bpc = streamed_bpc(model, vocabulary.encode(texts["validation"]), args)
        print(f"[ablation] gate_scale={gate_scale}: validation {bpc:.4f} bpc", flush=True)
        results[f"gate_scale_{str(gate_scale).lower()}_validation_bpc"] = round(bpc, 4)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-streams", type=int, default=32)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--sample-length", type=int, default=300)
    parser.add_argument("--ablation-steps", type=int, default=0)
    parser.add_argument("--ablation-units", type=int, default=128)
    parser.add_argument("--models", default="binary,float")
    parser.add_argument("--dropout", type=float, default=0.0, help="input dropout of every GRU (both models)")
    parser.add_argument("--tbptt", action="store_true",
                        help="train on contiguous streams, state carried across batches (truncated BPTT); "
                             "--steps is then rounded up to whole passes over the streams")
    parser.add_argument("--save-dir", default="", help="save the trained weights there")
    parser.add_argument("--output", default=str(RESULTS / "gru_lm.json"))
    args = parser.parse_args(argv)

    texts = load_texts()
    vocabulary = CharVocabulary.from_text(*texts.values())
    print({split: len(text) for split, text in texts.items()}, f"vocabulary {vocabulary.size}", flush=True)
    result: dict = {"config": {key: value for key, value in vars(args).items() if key != "output"},
                    "output_layer": "real Dense; the embedding is real too (its output is binarized by the "
                                    "first BinaryGRU's input quantizer)"}
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.save_dir:
        pathlib.Path(args.save_dir).mkdir(parents=True, exist_ok=True)
    for kind in args.models.split(","):
        result[kind] = run_model(kind, texts, vocabulary, args)
        if "binary" in result and "float" in result:
            result["bpc_ratio"] = round(result["binary"]["test_bpc"] / result["float"]["test_bpc"], 4)
        result["command"] = ".venv/bin/python benchmarks/gru_lm.py " + " ".join(argv or sys.argv[1:])
        result["machine"] = machine_info()
        output.write_text(json.dumps(result, indent=2) + "\n")
    if args.ablation_steps:
        result["gate_scale_ablation"] = ablation(texts, vocabulary, args)
        output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k in ("bpc_ratio",)}), f"wrote {output}")
    return result


if __name__ == "__main__":
    main()

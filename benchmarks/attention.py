"""Binary Transformer vs the same Transformer in float on GLUE SST-2 (sentiment of movie-review sentences).

Both models: a TextVectorization tokenizer built from the training part of SST-2 train, a real token +
position embedding, `--layers` `keras_bnn.layers.BinaryTransformerEncoder` blocks, masked mean pooling and a
real 2-way Dense head. The float model is the same block with every quantizer None (and a GELU between the
feed-forward matmuls); the binary one has binary Q/K/V/O and feed-forward matmuls, binary attention scores
and binary values. Both are trained from scratch (no pretrained BERT): the float model first, then each binary
variant is initialised from the float weights and trained with knowledge distillation from the float model's
logits (plus the label loss).

Model selection uses only a held-out part of SST-2 train (`--holdout` sentences): the binary variants of the
small ablation (`--variants`) are all trained alike and the one with the best held-out accuracy is the reported
"binary" model. GLUE dev (the `validation` split) is only evaluated, never used for a choice.

The selected binary model and the float model are converted with `keras_bnn.tflite.convert` (batch size 1)
and inspected with `keras_bnn.tflite.inspection.inspect`; the binary flatbuffer also runs on all of dev in
LCE's interpreter. Writes benchmarks/results/attention.json. With ``--save-dir DIR`` it also saves the selected
binary model and the float model (``save_weights``) and the tokenizer's vocabulary, which
``python -m keras_bnn.zoo.training.export_text binary_transformer.sst2`` turns into the zoo's weights file.

Run (12 minutes on 2 cores shared with other jobs):
    nice -n 10 .venv/bin/python benchmarks/attention.py
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import warnings

import keras_bnn  # noqa: F401  (first: selects tf-keras)
import keras_bnn.tflite
import larq as lq
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from keras_bnn.layers.attention import BinaryMultiHeadAttention, attention_macs
from keras_bnn.layers.transformer import BinaryTransformerEncoder
from keras_bnn.tflite.inspection import inspect
from keras_bnn.zoo.text_models import FLOAT_ENCODER, transformer_classifier

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

FLOAT = FLOAT_ENCODER
VARIANTS = {  # binary ablation: quantizer of every binary matmul's input, and the attention probabilities
    "ste_sign": dict(input_quantizer="ste_sign"),
    "elastic_sign": dict(input_quantizer="elastic_sign"),
    "learnable_threshold_sign": dict(input_quantizer="learnable_threshold_sign"),
    "bool_attention": dict(input_quantizer="ste_sign", probabilities="bool"),
}


def load_sst2(split: str) -> tuple[np.ndarray, np.ndarray]:
    sentences, labels = [], []
    for sentence, label in tfds.as_numpy(keras_bnn.datasets.load("sst2", split, as_supervised=True)):
        sentences.append(sentence.decode("utf-8"))
        labels.append(int(label))
    return np.array(sentences, dtype=object), np.array(labels, np.int64)


def build_classifier(args, encoder_settings: dict, vocab_size: int, length: int | None = None,
                     batch_size: int | None = None) -> tf.keras.Model:
    """Token ids (0: padding) -> 2 logits. Trained with any length (batches trimmed to their longest sentence),
    converted with ``length=args.seq_len`` and ``batch_size=1``. The definition is the zoo's
    (`keras_bnn.zoo.text_models.transformer_classifier`, shipped as ``binary_transformer.sst2``)."""
    tokens = tf.keras.Input((length,), dtype="int32", batch_size=batch_size)
    logits = transformer_classifier(tokens, encoder_settings, vocabulary_size=vocab_size, max_length=args.seq_len,
                                    d_model=args.d_model, heads=args.heads, ffn=args.ffn, layers=args.layers,
                                    dropout=args.dropout)
    return tf.keras.Model(tokens, logits)


def distillation_loss(temperature: float, label_weight: float):
    """y = [label, teacher logits...]: label_weight * CE(label) + (1 - label_weight) * T^2 * KL(teacher || student)."""

    def loss(y, logits):
        labels = tf.cast(y[:, 0], tf.int32)
        ce = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        if label_weight == 1.0:
            return ce
        teacher = tf.nn.softmax(y[:, 1:] / temperature)
        kl = tf.reduce_sum(teacher * (tf.math.log(teacher + 1e-8) - tf.nn.log_softmax(logits / temperature)), -1)
        return label_weight * ce + (1 - label_weight) * temperature ** 2 * kl

    return loss


def _lengths(x: np.ndarray) -> np.ndarray:
    return np.maximum((x != 0).sum(1), 1)  # TextVectorization pads with 0 at the end


def length_batches(x: np.ndarray, y: np.ndarray | None, batch: int, *, seed: int | None) -> tf.data.Dataset:
    """Batches of similar-length sentences trimmed to their longest one (SST-2 phrases are short: this cuts
    the padded positions, and the training time, several times). Shuffled (chunks of 50 batches) when `seed`."""
    lengths = _lengths(x)
    rng = np.random.default_rng(seed)
    if seed is None:
        order = np.argsort(lengths, kind="stable")
    else:  # sort by length within random chunks, then shuffle the batches
        order = rng.permutation(len(x))
        chunk = 50 * batch
        order = np.concatenate([part[np.argsort(lengths[part], kind="stable")]
                                for part in np.split(order, np.arange(chunk, len(x), chunk))])
    batches = [order[i:i + batch] for i in range(0, len(x), batch)]
    if seed is not None:
        rng.shuffle(batches)

    def generate():
        for index in batches:
            width = int(lengths[index].max())
            yield (x[index, :width], y[index]) if y is not None else (x[index, :width],)

    x_spec = tf.TensorSpec((None, None), tf.int32)
    signature = (x_spec, tf.TensorSpec((None, *y.shape[1:]), tf.float32)) if y is not None else (x_spec,)
    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2), batches


def predict_logits(model, x: np.ndarray, batch: int = 512) -> np.ndarray:
    dataset, batches = length_batches(x, None, batch, seed=None)
    logits = model.predict(dataset, verbose=0)
    out = np.empty_like(logits)
    out[np.concatenate(batches)] = logits
    return out


def accuracy(model, x, labels) -> float:
    return float(np.mean(np.argmax(predict_logits(model, x), -1) == labels))


class BestOnHoldout(tf.keras.callbacks.Callback):
    """Evaluates held-out accuracy after each epoch and restores the best epoch's weights at the end."""

    def __init__(self, x_hold, y_hold):
        super().__init__()
        self.x_hold, self.y_hold = x_hold, y_hold
        self.best, self.best_weights, self.history = -1.0, None, []

    def on_epoch_end(self, epoch, logs=None):
        score = accuracy(self.model, self.x_hold, self.y_hold)
        self.history.append(score)
        print(f"  epoch {epoch + 1}: held-out accuracy {score:.4f}", flush=True)
        if score > self.best:
            self.best, self.best_weights = score, self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_weights)


def train(model, x, y, x_hold, y_hold, *, epochs: int, lr: float, batch: int, loss, seed: int) -> dict:
    """Adam with cosine decay; keeps the weights of the epoch with the best held-out accuracy."""
    steps = epochs * int(np.ceil(len(x) / batch))
    model.compile(tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(lr, steps)), loss=loss)
    best = BestOnHoldout(x_hold, y_hold)
    started = time.time()
    for epoch in range(epochs):  # a new batch order each epoch
        data, _ = length_batches(x, y, batch, seed=seed + epoch)
        model.fit(data, initial_epoch=epoch, epochs=epoch + 1, callbacks=[best], verbose=2)
    return {"holdout_accuracy": best.best, "holdout_by_epoch": best.history,
            "train_seconds": round(time.time() - started)}


def flatbuffer_report(model, args, settings, vocab, x_dev, y_dev, *, run_lce: bool) -> dict:
    """Convert (batch 1), inspect, and optionally run LCE's interpreter on dev."""
    converted = build_classifier(args, settings, vocab, length=args.seq_len, batch_size=1)
    converted.set_weights(model.get_weights())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the float model has no binary layer, which convert warns about
        flatbuffer = keras_bnn.tflite.convert(converted)
    report = inspect(flatbuffer)
    binary_macs = report.macs["bitpacked"] + report.macs["unpacked_binary"] + report.macs["activation_binary"]
    result = {
        "flatbuffer_bytes": report.flatbuffer_bytes,
        "bitpacked_share": report.bitpacked_share,
        "act_act_binary_mac_share": report.macs["activation_binary"] / binary_macs if binary_macs else None,
        "flatbuffer_macs": report.macs,
        "flatbuffer_ops": report.op_counts,
    }
    if run_lce:
        from keras_bnn._compat import lce_interpreter_class

        interpreter = lce_interpreter_class()(flatbuffer, num_threads=1)
        logits = np.concatenate([interpreter.interpreter.predict([x_dev[i:i + 1]])[0] for i in range(len(x_dev))])
        result["lce_dev_accuracy"] = float(np.mean(np.argmax(logits, -1) == y_dev))
        result["keras_lce_top1_agreement"] = float(np.mean(
            np.argmax(logits, -1) == np.argmax(converted.predict(x_dev, verbose=0), -1)))
    return result


def analytic_act_act_share(model, seq_len: int) -> float:
    """Activation x activation MACs (scores, plus context when probabilities are 0/1) over all binary MACs."""
    act_act = weight_act = 0
    for layer in model.layers:
        if isinstance(layer, BinaryTransformerEncoder):
            macs = attention_macs(layer.attention, seq_len)
            act_act += macs["scores"] + (macs["context"] if layer.probabilities == "bool" else 0)
            weight_act += macs["projections"] + 2 * seq_len * layer.intermediate_dim * layer.attention._query_shape[-1]
    return act_act / (act_act + weight_act)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=48)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=12000)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--float-epochs", type=int, default=2)
    parser.add_argument("--float-lr", type=float, default=1e-3)
    parser.add_argument("--binary-epochs", type=int, default=1)
    parser.add_argument("--binary-lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--label-weight", type=float, default=0.5)
    parser.add_argument("--holdout", type=int, default=5000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--train-limit", type=int, default=0, help="use only this many training sentences (0: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save-dir", default="",
                        help="save the selected binary model's and the float model's weights there "
                             "(binary.weights.h5, float.weights.h5) with the tokenizer's vocabulary.json")
    parser.add_argument("--output", default=str(RESULTS / "attention.json"))
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(args.seed)
    start = time.time()

    sentences, labels = load_sst2("train")
    order = np.random.default_rng(args.seed).permutation(len(sentences))
    hold, fit = order[:args.holdout], order[args.holdout:]
    if args.train_limit:
        fit = fit[:args.train_limit]
    dev_sentences, y_dev = load_sst2("validation")
    vectorize = tf.keras.layers.TextVectorization(max_tokens=args.vocab, output_sequence_length=args.seq_len)
    vectorize.adapt(sentences[fit], batch_size=1024)  # tokenizer from the training part only
    vocab = vectorize.vocabulary_size()

    def ids(texts):
        tokens = vectorize(texts).numpy().astype(np.int32)
        tokens[(tokens == 0).all(1), 0] = 1  # a sentence with no token (e.g. "--") becomes one OOV token
        return tokens

    x_fit, x_hold, x_dev = ids(sentences[fit]), ids(sentences[hold]), ids(dev_sentences)
    y_fit, y_hold = labels[fit], labels[hold]
    print(f"train {len(x_fit)}, held out {len(x_hold)}, dev {len(x_dev)}, vocabulary {vocab}", flush=True)

    # 1. Float teacher.
    teacher = build_classifier(args, FLOAT, vocab)
    float_result = train(teacher, x_fit, y_fit[:, None].astype(np.float32), x_hold, y_hold,
                         epochs=args.float_epochs, lr=args.float_lr, batch=args.batch_size,
                         loss=distillation_loss(1.0, 1.0), seed=args.seed)
    float_result.update(dev_accuracy=accuracy(teacher, x_dev, y_dev), params=int(teacher.count_params()),
                        model_bits=int(lq.models.ModelProfile(teacher).memory))
    print("float", float_result, f"{time.time() - start:.0f}s", flush=True)
    targets = np.concatenate([y_fit[:, None], predict_logits(teacher, x_fit)], 1).astype(np.float32)

    # 2. Binary variants, initialised from the teacher, distilled; chosen on the held-out part.
    ablation, models = {}, {}
    for name in args.variants.split(","):
        settings = VARIANTS[name]
        tf.keras.utils.set_random_seed(args.seed)
        student = build_classifier(args, settings, vocab)
        student.set_weights(_matching_weights(teacher, student))
        trained = train(student, x_fit, targets, x_hold, y_hold, epochs=args.binary_epochs,
                        lr=args.binary_lr, batch=args.batch_size,
                        loss=distillation_loss(args.temperature, args.label_weight), seed=args.seed)
        ablation[name] = {"settings": settings, **trained, "dev_accuracy": accuracy(student, x_dev, y_dev)}
        models[name] = student
        print("binary", name, ablation[name], f"{time.time() - start:.0f}s", flush=True)
    chosen = max(ablation, key=lambda name: ablation[name]["holdout_accuracy"])
    student = models[chosen]
    binary_result = {"variant": chosen, **ablation[chosen], "params": int(student.count_params()),
                     "model_bits": int(lq.models.ModelProfile(student).memory)}
    binary_result.update(flatbuffer_report(student, args, VARIANTS[chosen], vocab, x_dev, y_dev, run_lce=True))
    binary_result["act_act_binary_mac_share_analytic"] = analytic_act_act_share(student, args.seq_len)
    float_result.update(flatbuffer_report(teacher, args, FLOAT, vocab, x_dev, y_dev, run_lce=False))
    if args.save_dir:
        save_models(pathlib.Path(args.save_dir), student, teacher, vectorize.get_vocabulary())

    result = {
        "binary": binary_result,
        "float": float_result,
        "accuracy_gap": float_result["dev_accuracy"] - binary_result["dev_accuracy"],
        "ablation": ablation,
        "setup": {key: value for key, value in vars(args).items() if key not in ("output", "save_dir")} | {
            "train_sentences": len(x_fit), "holdout_sentences": len(x_hold), "dev_sentences": len(x_dev),
            "vocabulary": vocab, "pretrained": False, "wall_seconds": round(time.time() - start)}
        | ({"save_dir": args.save_dir} if args.save_dir else {}),
        "command": " ".join(["nice -n 10 .venv/bin/python benchmarks/attention.py", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
    }
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: result[key] for key in ("binary", "float", "accuracy_gap")}, indent=2, default=str))
    return result


def save_models(directory: pathlib.Path, binary: tf.keras.Model, teacher: tf.keras.Model,
                vocabulary: list[str]) -> None:
    """Weights of the selected binary model and of the float teacher, and the tokenizer's vocabulary (in id
    order: 0 is padding, 1 out-of-vocabulary); ``python -m keras_bnn.zoo.training.export_text`` exports them."""
    directory.mkdir(parents=True, exist_ok=True)
    binary.save_weights(str(directory / "binary.weights.h5"))
    teacher.save_weights(str(directory / "float.weights.h5"))
    (directory / "vocabulary.json").write_text(json.dumps(list(vocabulary)) + "\n")
    print(f"saved weights and vocabulary to {directory}", flush=True)


def _matching_weights(teacher: tf.keras.Model, student: tf.keras.Model) -> list[np.ndarray]:
    """The student's weights with every weight the teacher has under the same name copied from it."""
    source = {weight.name: value for weight, value in zip(teacher.weights, teacher.get_weights())}
    return [source.get(weight.name, value) if source.get(weight.name, value).shape == value.shape else value
            for weight, value in zip(student.weights, student.get_weights())]


if __name__ == "__main__":
    main()

"""Binary Transformer vs the same Transformer in float on GLUE SST-2 (sentiment of movie-review sentences).

A thin driver over the library: the model is the zoo's ``binary_transformer.sst2`` definition, trained by its
recipe (``keras_bnn.zoo.training.sentence_classifier``): the float teacher first (every quantizer None, GELU
feed-forward), then each binary variant of the ablation (``--variants``: the quantizer of every binary matmul's
input, and Bi-Attention) initialised from the teacher and distilled from its logits. Model selection uses only
train sentences held out by a seeded permutation; GLUE dev (the ``validation`` split) is only evaluated.

The selected binary model and the float teacher are converted with ``keras_bnn.tflite.convert`` (batch size 1) and
inspected; the binary flatbuffer also runs on all of dev in LCE's runtime (``keras_bnn.tflite.verify``). Writes
benchmarks/results/attention.json. The zoo's shipped model is the recipe's ``ste_sign`` variant; train it with
``python -m keras_bnn.zoo.training.train binary_transformer.sst2``.

Run (about 12 minutes on 2 shared cores):
    nice -n 10 .venv/bin/python benchmarks/attention.py
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import warnings

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import keras_bnn.tflite
import keras_bnn.zoo as zoo
import larq as lq
import numpy as np
from keras_bnn.legacy.layers import BinaryTransformerEncoder
from keras_bnn.legacy.layers.attention import attention_macs
from keras_bnn.tflite.runtimes import open_runtime
from keras_bnn.zoo.models.transformer import BINARY_ENCODER
from keras_bnn.zoo.training.sentence_classifier import accuracy, load_sentence_data, train_sentence_classifier

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

NAME = "binary_transformer.sst2"
VARIANTS = {  # binary ablation: quantizer of every binary matmul's input, and the attention probabilities
    "ste_sign": BINARY_ENCODER,
    "elastic_sign": dict(input_quantizer="elastic_sign"),
    "learnable_threshold_sign": dict(input_quantizer="learnable_threshold_sign"),
    "bool_attention": dict(input_quantizer="ste_sign", probabilities="bool"),
}


def flatbuffer_report(model, data, *, binary: bool, encoder: dict | None) -> dict:
    """Convert (batch 1, 48 tokens), inspect, and for the binary model run LCE's runtime on all of dev."""
    converted = zoo.entry(NAME).builder(batch_size=1, binary=binary, encoder=encoder, legacy=True)
    converted.set_weights(model.get_weights())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the float model has no binary layer, which convert warns about
        result = keras_bnn.tflite.convert(converted, report=True)
    report = result.report
    binary_macs = report.macs["bitpacked"] + report.macs["unpacked_binary"] + report.macs["activation_binary"]
    figures = {
        "flatbuffer_bytes": report.flatbuffer_bytes,
        "bitpacked_share": report.bitpacked_share,
        "act_act_binary_mac_share": report.macs["activation_binary"] / binary_macs if binary_macs else None,
        "flatbuffer_macs": report.macs,
        "flatbuffer_ops": report.op_counts,
    }
    if binary:
        check = keras_bnn.tflite.verify(converted, result.flatbuffer, data.x_dev, runtime="lce")
        flat = open_runtime(result.flatbuffer, "lce")
        logits = np.concatenate([flat.run([data.x_dev[i:i + 1]])[0] for i in range(len(data.x_dev))])
        figures["lce_dev_accuracy"] = float(np.mean(np.argmax(logits, -1) == data.y_dev))
        figures["keras_lce_top1_agreement"] = check.top1_agreement
    return figures


def analytic_act_act_share(model, seq_len: int) -> float:
    """Activation x activation MACs (scores, plus context when probabilities are 0/1) over all binary MACs."""
    act_act = weight_act = 0
    for layer in model.layers:
        if isinstance(layer, BinaryTransformerEncoder):
            macs = attention_macs(layer.attention, seq_len)
            features = layer.attention.get_config()["query_shape"][-1]
            act_act += macs["scores"] + (macs["context"] if layer.probabilities == "bool" else 0)
            weight_act += macs["projections"] + 2 * seq_len * layer.intermediate_dim * features
    return act_act / (act_act + weight_act)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--train-limit", type=int, default=None, help="use only this many training sentences")
    parser.add_argument("--seed", type=int, default=zoo.entry(NAME).pretrained.seed)
    parser.add_argument("--output", default=str(RESULTS / "attention.json"))
    args = parser.parse_args(argv)
    entry = zoo.entry(NAME)
    start = time.time()
    data = load_sentence_data(entry, args.seed, args.train_limit)
    print(f"train {len(data.x_fit)}, held out {len(data.x_hold)}, dev {len(data.x_dev)}, vocabulary "
          f"{len(data.tokenizer.vocabulary)}", flush=True)

    ablation, models, teacher, float_result = {}, {}, None, {}
    for name in args.variants.split(","):
        trained = train_sentence_classifier(entry, data, seed=args.seed, encoder=VARIANTS[name], teacher=teacher)
        if teacher is None:
            teacher = trained["teacher"]
            float_result = {**trained["teacher_log"], "dev_accuracy": accuracy(teacher, data.x_dev, data.y_dev),
                            "params": int(teacher.count_params()),
                            "model_bits": int(lq.models.ModelProfile(teacher).memory)}
            print("float", float_result, f"{time.time() - start:.0f}s", flush=True)
        student = trained["student"]
        ablation[name] = {"settings": VARIANTS[name], **trained["student_log"],
                          "dev_accuracy": accuracy(student, data.x_dev, data.y_dev)}
        models[name] = student
        print("binary", name, ablation[name], f"{time.time() - start:.0f}s", flush=True)
    chosen = max(ablation, key=lambda name: ablation[name]["holdout_accuracy"])
    student = models[chosen]
    binary_result = {"variant": chosen, **ablation[chosen], "params": int(student.count_params()),
                     "model_bits": int(lq.models.ModelProfile(student).memory)}
    binary_result.update(flatbuffer_report(student, data, binary=True, encoder=VARIANTS[chosen]))
    binary_result["act_act_binary_mac_share_analytic"] = analytic_act_act_share(student, entry.input_shape[0])
    float_result.update(flatbuffer_report(teacher, data, binary=False, encoder=None))

    result = {
        "binary": binary_result,
        "float": float_result,
        "accuracy_gap": float_result["dev_accuracy"] - binary_result["dev_accuracy"],
        "ablation": ablation,
        "setup": {"recipe": vars(entry.recipe), "seed": args.seed, "variants": args.variants,
                  "train_sentences": len(data.x_fit), "holdout_sentences": len(data.x_hold),
                  "dev_sentences": len(data.x_dev), "vocabulary": len(data.tokenizer.vocabulary),
                  "pretrained": False, "wall_seconds": round(time.time() - start)},
        "command": " ".join(["nice -n 10 .venv/bin/python benchmarks/attention.py", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
    }
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({key: result[key] for key in ("binary", "float", "accuracy_gap")}, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()

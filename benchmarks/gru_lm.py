"""Binary GRU vs float GRU character language models on Tiny Shakespeare (test bits per character).

A thin driver over the library: both models are the zoo's ``binary_gru_lm.tiny_shakespeare`` definition (real
Embedding -> (Binary)GRU -> real Dense), trained by its recipe (``keras_bnn.zoo.training.language_model``:
truncated BPTT on contiguous streams) for the same number of steps; test BPC is streamed over 32 contiguous streams
with the state carried (``keras_bnn.text.streamed_bits_per_character``); ``test_bpc_windowed`` restarts from a zero
state every 100 characters. Each model's batch-1 step model is converted with ``keras_bnn.tflite.convert``, and text
is sampled from it and from Keras. ``--ablation-steps N`` also trains a small binary model with and without the
gate scale.

Run (in the background, ~35 min on 2 shared cores):
    nohup nice -n 10 .venv/bin/python benchmarks/gru_lm.py --steps 2000 --ablation-steps 150 > gru_lm.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import warnings

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import keras_bnn.tflite
import keras_bnn.zoo as zoo
import tensorflow as tf
from keras_bnn.text import (
    CharVocabulary,
    KerasStepper,
    generate,
    step_model,
    streamed_bits_per_character,
    windowed_bits_per_character,
)
from keras_bnn.zoo.evaluation import LM_STREAMS, LM_WINDOW
from keras_bnn.zoo.training.language_model import train_language_model, vocabulary_of

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

NAME = "binary_gru_lm.tiny_shakespeare"
PROMPT = "ROMEO:\n"


def model_bits(model: tf.keras.Model) -> int:
    """Weight storage in bits as larq.models.summary counts it (a QuantizedVariable's precision, else 32)."""
    return int(sum(getattr(w, "precision", 32) * w.shape.num_elements() for w in model.weights))


def streamed_bpc(model: tf.keras.Model, ids, binary: bool, options: dict) -> float:
    stateful = zoo.entry(NAME).builder(batch_size=LM_STREAMS, stateful=True, binary=binary,
                                       num_classes=model.output_shape[-1], legacy=True, **options)
    stateful.set_weights(model.get_weights())
    return streamed_bits_per_character(stateful, ids, window=LM_WINDOW)[0]


def run_model(kind: str, texts: dict, vocabulary: CharVocabulary, args) -> dict:
    binary = kind == "binary"
    options = {"dropout": args.dropout}
    model, log = train_language_model(zoo.entry(NAME), steps=args.steps, seed=args.seed, binary=binary,
                                      log_every=args.log_every, texts=texts, **options)
    if args.save_dir:
        model.save_weights(str(pathlib.Path(args.save_dir) / f"{kind}.weights.h5"))
    ids = {split: vocabulary.encode(text) for split, text in texts.items()}
    test_bpc = streamed_bpc(model, ids["test"], binary, options)
    validation_bpc = streamed_bpc(model, ids["validation"], binary, options)
    test_windowed = windowed_bits_per_character(model, ids["test"], window=LM_WINDOW)
    print(f"[{kind}] test {test_bpc:.4f} bpc (streamed), {test_windowed:.4f} bpc (windows from a zero state); "
          f"validation {validation_bpc:.4f} bpc", flush=True)
    step = step_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", keras_bnn.tflite.NotBitpackedWarning)  # the float model
        result = keras_bnn.tflite.convert(step, report=True)
    print(result.report, flush=True)
    samples = {}
    for name, stepper in (("keras", KerasStepper(step)), ("flatbuffer", keras_bnn.tflite.FlatbufferStepper(
            result.flatbuffer))):
        samples[name] = {
            "greedy": generate(stepper, vocabulary, PROMPT, args.sample_length),
            "temperature_0.8_seed_0": generate(stepper, vocabulary, PROMPT, args.sample_length, temperature=0.8,
                                               seed=0),
        }
    print(f"[{kind}] sample (flatbuffer, temperature 0.8, seed 0):\n"
          f"{samples['flatbuffer']['temperature_0.8_seed_0']}", flush=True)
    return {
        "test_bpc": round(test_bpc, 4),
        "test_bpc_windowed": round(test_windowed, 4),
        "validation_bpc": round(validation_bpc, 4),
        "params": int(model.count_params()),
        "model_bits": model_bits(model),
        "flatbuffer_bytes": result.report.flatbuffer_bytes,
        "bitpacked_share": result.report.bitpacked_share,
        "macs_per_char": result.report.macs,
        "train_seconds": log["train_wall_time_s"],
        "final_train_bpc": log["final_train_bpc"],
        "samples": samples,
    }


def ablation(texts: dict, vocabulary: CharVocabulary, args) -> dict:
    """Small binary models with and without the learned gate scale (same seed, data and steps)."""
    results = {"units": args.ablation_units, "steps": args.ablation_steps}
    for gate_scale in (True, False):
        options = {"units": args.ablation_units, "gate_scale": gate_scale}
        model, _ = train_language_model(zoo.entry(NAME), steps=args.ablation_steps, seed=args.seed, texts=texts,
                                        log_every=args.log_every, **options)
        bpc = streamed_bpc(model, vocabulary.encode(texts["validation"]), True, options)
        print(f"[ablation] gate_scale={gate_scale}: validation {bpc:.4f} bpc", flush=True)
        results[f"gate_scale_{str(gate_scale).lower()}_validation_bpc"] = round(bpc, 4)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=zoo.entry(NAME).recipe.steps)
    parser.add_argument("--seed", type=int, default=zoo.entry(NAME).pretrained.seed)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--sample-length", type=int, default=300)
    parser.add_argument("--ablation-steps", type=int, default=0)
    parser.add_argument("--ablation-units", type=int, default=128)
    parser.add_argument("--models", default="binary,float")
    parser.add_argument("--dropout", type=float, default=0.0, help="input dropout of the GRU (both models)")
    parser.add_argument("--save-dir", default="", help="save the trained weights there")
    parser.add_argument("--output", default=str(RESULTS / "gru_lm.json"))
    args = parser.parse_args(argv)

    vocabulary, texts = vocabulary_of(zoo.entry(NAME))
    print({split: len(text) for split, text in texts.items()}, f"vocabulary {vocabulary.size}", flush=True)
    result: dict = {"config": {key: value for key, value in vars(args).items() if key != "output"},
                    "recipe": vars(zoo.entry(NAME).recipe),
                    "output_layer": "real Dense; the embedding is real too (its output is binarized by the "
                                    "BinaryGRU's input quantizer)"}
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

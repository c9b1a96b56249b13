"""The int8 target's variants on the zoo's image models: agreement with Keras, size, TFLite Micro arena, signs.

For each pretrained image model, on the FULL test split (10,000 images), one run measures, for every variant of
the int8 file (``head="int8"``: every op int8; ``head="float"``: exact/float32 logits; for the models with a real
first layer also ``weight_digits=8``):

- Keras test accuracy, and per runtime (LiteRT with XNNPACK by default; ``tf.lite.Interpreter``, TFLite Micro on
  request): accuracy, top-1 agreement with Keras, max |difference| of the output probabilities;
- flatbuffer bytes against the ideal (one byte per binary weight + every real parameter at its stored width,
  float32 here) and the LCE flatbuffer's bytes for comparison;
- TFLite Micro's arena bytes (RAM) and which ops XNNPACK runs;
- where the int8 file's signs differ from Keras' (the real layers' effect, measured apart): the signs entering
  the first binary layer (after the real stem), and for Bi-Real Net the signs of each block's real int8 output.

Calibration uses the first 500 training images. Run: ``nice .venv/bin/python benchmarks/int8_target.py`` (writes
benchmarks/results/int8_target.json; ``--runtimes litert tflite tflm`` for all three, mostly TFLite Micro's time).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import keras_bnn.tflite
import larq as lq
import numpy as np
import tensorflow as tf

import keras_bnn.zoo as zoo
from keras_bnn.tflite.bench import compare
from keras_bnn.tflite.targets.int8 import convert_int8
from keras_bnn.tflite.runtimes import open_runtime, run, tflm_arena_bytes
from keras_bnn.datasets import load_images as load_split

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

MODELS = ("binary_cnn.mnist", "binarynet_mlp.mnist", "xnornet_small.fashion_mnist", "birealnet_small.fashion_mnist")
RUNTIMES = ("litert", "tflite", "tflm")
# Where the real layers meet a sign: (Keras layer whose output's sign is taken, int8 tensor holding that sign).
SIGN_TAPS = {"xnornet_small.fashion_mnist": [("stem_pool", "stem_pool/signs")],
             "birealnet_small.fashion_mnist": [("stem_pool", "stem_pool/signs"), ("block1", "block1"),
                                               ("block2", "block2"), ("block3", "block3")]}


def ideal_bytes(model: tf.keras.Model) -> tuple[int, int]:
    """(ideal bytes, binary weights): 1 byte per binary weight, every other parameter at its stored width."""
    binary_ids, binary = set(), 0
    for layer in model.layers:
        quantizer = getattr(layer, "kernel_quantizer", None)
        if isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense)) and quantizer is not None and \
                keras_bnn._compat.is_binary_quantizer(quantizer):
            binary_ids.add(id(layer.kernel))
            binary += int(np.prod(layer.kernel.shape))
    real = sum(int(np.prod(w.shape)) * w.dtype.size for w in model.weights if id(w) not in binary_ids)
    return binary + real, binary


def sign_agreement(model, flatbuffer: bytes, images: np.ndarray, taps) -> dict[str, float]:
    """Fraction of the signs at each tap that equal Keras' (TFLite's builtin kernels, all tensors kept)."""
    interpreter = tf.lite.Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True,
                                      experimental_op_resolver_type=tf.lite.experimental.OpResolverType
                                      .BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    details = {d["name"]: d for d in interpreter.get_tensor_details()}
    keras = tf.keras.Model(model.inputs, [model.get_layer(layer).output for layer, _ in taps])
    reference = keras.predict(images, batch_size=500, verbose=0)
    reference = reference if isinstance(reference, list) else [reference]
    equal = np.zeros(len(taps))
    for i in range(len(images)):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images[i:i + 1])
        interpreter.invoke()
        for j, (_, tensor) in enumerate(taps):
            detail = details[tensor]
            values = interpreter.get_tensor(detail["index"])[0].astype(np.int64)
            positive = values >= detail["quantization"][1]  # real value >= 0
            equal[j] += np.mean(positive == (reference[j][i] >= 0))
    return {layer: float(equal[j] / len(images)) for j, (layer, _) in enumerate(taps)}


def measure_file(model, flatbuffer, images, labels, keras_probabilities, runtimes) -> dict:
    result = {"bytes": len(flatbuffer), "tflm_arena_bytes": tflm_arena_bytes(flatbuffer, images[:1]),
              "runtimes": {}}
    delegated, left = open_runtime(flatbuffer, "litert").xnnpack_delegated_ops()
    result["xnnpack"] = {"delegated_ops": len(delegated), "builtin_ops": sorted(set(left))}
    for runtime in runtimes:
        result["runtimes"][runtime] = compare(run(flatbuffer, images, runtime)[0], keras_probabilities, labels)
        print(f"    {runtime}: {result['runtimes'][runtime]}", flush=True)
    return result


def measure_model(name: str, examples: int, runtimes) -> dict:
    model = zoo.get(name, pretrained=True, batch_size=1, legacy=True)
    dataset = zoo.entry(name).dataset
    calibration, _ = load_split(dataset, "train[:500]")
    images, labels = load_split(dataset, f"test[:{examples}]")
    keras_probabilities = model.predict(images, batch_size=500, verbose=0)
    ideal, binary = ideal_bytes(model)
    entry = {"name": name, "examples": int(len(images)), "keras_accuracy": float(np.mean(
        keras_probabilities.argmax(axis=1) == labels)), "ideal_bytes": ideal, "binary_weights": binary,
        "lce_bytes": len(keras_bnn.tflite.convert(model)), "variants": {}}
    variants = {"int8": {}, "float_head": {"head": "float"}}
    if name in SIGN_TAPS:
        variants["int8_weight_digits_8"] = {"weight_digits": 8}
    for variant, options in variants.items():
        print(f"  {name} [{variant}]", flush=True)
        flatbuffer = convert_int8(model, representative_data=calibration, **options)
        result = measure_file(model, flatbuffer, images, labels, keras_probabilities, runtimes)
        result["options"] = options
        result["bytes_vs_ideal"] = round(len(flatbuffer) / ideal, 3)
        if name in SIGN_TAPS and "head" not in options:
            result["sign_agreement"] = sign_agreement(model, flatbuffer, images, SIGN_TAPS[name])
            print(f"    signs: {result['sign_agreement']}", flush=True)
        entry["variants"][variant] = result
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--examples", type=int, default=10_000, help="test images (default: the full split)")
    parser.add_argument("--runtimes", nargs="+", default=["litert"], choices=RUNTIMES,
                        help="runtimes each variant runs in (benchmarks/portable.py runs the default file in all)")
    parser.add_argument("--output", default=str(RESULTS / "int8_target.json"))
    args = parser.parse_args(argv)
    models = []
    for name in args.models:
        models.append(measure_model(name, args.examples, args.runtimes))
        command = "python benchmarks/int8_target.py " + " ".join(argv if argv is not None else sys.argv[1:])
        pathlib.Path(args.output).write_text(json.dumps({"command": command, "machine": machine_info(),
                                                         "models": models}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

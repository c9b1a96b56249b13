"""Runs a TFLite flatbuffer in LiteRT on the machine it runs on: the aarch64 side of keras_bnn.tflite.emulation.

Started by `keras_bnn.tflite.emulation.Aarch64` with the emulated Python, as a script (not imported), so it uses
only the standard library, numpy and ai_edge_litert. Data comes and goes as files, never pickles:

    python _aarch64_runner.py MODEL.tflite INPUTS.npz OUTPUTS.npz [--num-threads N] [--no-xnnpack] [--invokes N]

INPUTS.npz holds ``s{j}_input_{i}``: input i (in the order of the interpreter's input details) of sample j, for
samples 0..m-1. For each sample in turn the inputs are set and the model invoked ``--invokes`` times (default 1);
OUTPUTS.npz gets ``s{j}_output_{i}`` as they are after the last invoke. Counting instructions per inference runs
this twice on one sample, with 1 and with 1 + n invokes.
Exit status 3 means LiteRT refused the flatbuffer or the inputs (a ValueError); the reason is on stderr. It
prints "ran" once the first invoke returned: a crash before that is the flatbuffer's (a bad one makes LiteRT
1.4.0 die of SIGSEGV rather than raise).

Example (on an aarch64 machine, or through the emulation):
    $ python _aarch64_runner.py model.tflite inputs.npz outputs.npz --invokes 11
"""

import argparse
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

REFUSED = 3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("outputs")
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument("--no-xnnpack", action="store_true", help="LiteRT's builtin kernels, no default delegate")
    parser.add_argument("--invokes", type=int, default=1)
    args = parser.parse_args(argv)
    if args.invokes < 1:
        parser.error("--invokes must be at least 1")

    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if args.no_xnnpack else OpResolverType.AUTO
    try:
        interpreter = Interpreter(model_path=args.model, num_threads=args.num_threads,
                                  experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except ValueError as error:
        return _refused(error)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    with np.load(args.inputs, allow_pickle=False) as data:
        samples = len(data.files) // max(len(inputs), 1)
        expected = {f"s{j}_input_{i}" for j in range(samples) for i in range(len(inputs))}
        if set(data.files) != expected or not samples:
            return _refused(f"the model has {len(inputs)} inputs; the inputs file holds {sorted(data.files)}")
        results = {}
        for j in range(samples):
            try:
                for i, detail in enumerate(inputs):
                    interpreter.set_tensor(detail["index"], data[f"s{j}_input_{i}"])
            except ValueError as error:
                return _refused(f"sample {j}: {error}")
            interpreter.invoke()
            if j == 0:
                print("ran", flush=True)  # a crash before this is blamed on the flatbuffer
            for _ in range(args.invokes - 1):
                interpreter.invoke()
            results.update({f"s{j}_output_{i}": interpreter.get_tensor(detail["index"])
                            for i, detail in enumerate(outputs)})
    np.savez(args.outputs, **results)
    return 0


def _refused(reason):
    print(f"refused: {reason}", file=sys.stderr)
    return REFUSED


if __name__ == "__main__":
    sys.exit(main())

"""Run larq (tf-keras 2) in a subprocess, as the reference the Keras 3 implementation is compared with.

larq imports only with ``TF_USE_LEGACY_KERAS=1`` set before TensorFlow, and a test process may run on another
Keras backend, so larq always runs in its own Python process: `run_larq(script, **arrays)` writes the arrays to
an ``.npz`` file, runs `script` with them as the dict ``inputs`` (numpy arrays) and ``larq``, ``tf``, ``np``
imported, and returns the dict ``outputs`` that the script fills (numpy arrays or numbers).

Example (not run as a doctest: it starts TensorFlow):
    outputs = run_larq("outputs['y'] = larq.quantizers.ste_sign(inputs['x']).numpy()", x=np.ones(3, 'float32'))
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

_PRELUDE = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
import larq
inputs = dict(np.load(sys.argv[1]))
outputs = {}
"""

_EPILOGUE = """
np.savez(sys.argv[2], **{name: np.asarray(value) for name, value in outputs.items()})
"""


def run_larq(script: str, *, timeout: float = 600, **arrays) -> dict[str, np.ndarray]:
    """Run `script` under larq in a fresh Python process; the arrays it stores in ``outputs``.

    Raises:
        RuntimeError: the script failed (the message holds its stderr).
    """
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    with tempfile.TemporaryDirectory(prefix="larq_reference_") as folder:
        inputs_path = os.path.join(folder, "inputs.npz")
        outputs_path = os.path.join(folder, "outputs.npz")
        script_path = os.path.join(folder, "script.py")
        np.savez(inputs_path, **arrays)
        with open(script_path, "w") as handle:
            handle.write(_PRELUDE + textwrap.dedent(script) + _EPILOGUE)
        result = subprocess.run([sys.executable, script_path, inputs_path, outputs_path], env=env,
                                capture_output=True, text=True, timeout=timeout, cwd=folder)
        if result.returncode != 0:
            raise RuntimeError(f"larq reference script failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
        with np.load(outputs_path) as data:
            return {name: data[name] for name in data.files}

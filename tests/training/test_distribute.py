"""keras_bnn.training under data parallelism gives the same training as one device.

distributed_check.py runs in a subprocess (devices must be split before the framework starts): Bop via
case_optimizer, and a Distiller (attention pair) into a PCNN + BinaryRelax student with BinaryRelaxScheduler,
BatchNormReestimation and BinarizationMonitor, once on one device and once data-parallel on two CPU devices: with
TensorFlow's MirroredStrategy (global batch 16 = 2 × 8, synchronized BatchNorm; the check of the TensorFlow
backend, and of PyTorch, which has no Keras 3 distribution API) or JAX's keras.distribution.DataParallel.

Tolerance: Bop's training has no reduction whose order differs beyond float32 ulps (rtol 1e-5). The distiller's
synchronized BatchNorm computes the variance as E[x²] − E[x]² from all-reduced sums where one device computes
E[(x − E[x])²]: the logged losses then differ by up to ~2e-5 relative (rtol 1e-4); a wrong loss scaling would
change them by a factor of 2, an unsynchronized BatchNorm by ~1e-1.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).with_name("distributed_check.py")
MODE = "jax" if keras.backend.backend() == "jax" else "mirrored"


@pytest.fixture(scope="module")
def results():
    env = {key: value for key, value in os.environ.items() if key not in ("KERAS_BACKEND", "XLA_FLAGS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    process = subprocess.run([sys.executable, str(SCRIPT), MODE], capture_output=True, text=True, env=env,
                             timeout=600, cwd=str(SCRIPT.parents[2]))
    assert process.returncode == 0, process.stderr[-4000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("training, rtol", [("bop", 1e-5), ("distiller", 1e-4)])
def test_distributed_training_equals_one_device(results, training, rtol):
    single, distributed = results["single"][training], results["distributed"][training]
    assert np.all(np.isfinite(single["loss"]))
    np.testing.assert_allclose(distributed["loss"], single["loss"], rtol=rtol)
    np.testing.assert_allclose(distributed["predictions"], single["predictions"], rtol=rtol, atol=1e-5)

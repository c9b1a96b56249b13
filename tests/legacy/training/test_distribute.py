"""Everything trains under tf.distribute and gives the same losses as one device.

distributed_check.py runs in subprocesses (the CPU must be split into 2 logical devices before TensorFlow
initialises its devices, and MultiWorkerMirroredStrategy must be created before any other op): the same three
trainings (PCNN + BinaryRelax + BatchNorm re-estimation + monitor; Bop via case_optimizer; distillation into a
two-step ``requantize`` model) run on one device, on MirroredStrategy with 2 replicas (global batch 16 split into
2 × 8, synchronized BatchNorm) and on MultiWorkerMirroredStrategy (one local worker).

Tolerance: the replicas compute the same float32 operations on half batches, and the all-reduce then adds two
partial gradient sums (and sync-BatchNorm two partial moment sums) where one device adds one. Only the summation
order differs, a few float32 ulps (~1e-7 relative) per reduction; over 4 Adam steps this stays below 1e-6
relative (the observed maximum is ~2e-7). rtol = 1e-5 leaves margin for that and still fails on any real
difference: a wrong loss scaling changes losses by a factor, an unsynchronized BatchNorm by ~1e-1, and one
binary weight or activation whose sign differs by far more than 1e-5.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).with_name("distributed_check.py")
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def results():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    processes = {
        mode: subprocess.Popen([sys.executable, str(SCRIPT), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
        for mode in ("mirrored", "multiworker")
    }
    merged = {}
    for mode, process in processes.items():
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"{mode} run failed:\n{stderr[-3000:]}"
        merged.update(json.loads(stdout.strip().splitlines()[-1]))
    return merged


def _assert_same_training(reference, other):
    for run in ("run_relax_pcnn", "run_bop", "run_distill_two_step"):
        np.testing.assert_allclose(other[run]["losses"], reference[run]["losses"], rtol=RTOL, atol=ATOL, err_msg=run)
    np.testing.assert_allclose(other["run_relax_pcnn"]["moving_mean"], reference["run_relax_pcnn"]["moving_mean"],
                               rtol=RTOL, atol=ATOL)
    assert other["run_relax_pcnn"]["flip_ratio"] == reference["run_relax_pcnn"]["flip_ratio"]
    assert other["run_bop"]["kernel"] == reference["run_bop"]["kernel"]  # the same Bop flips, bit for bit


def test_mirrored_two_replicas_match_one_device(results):
    assert results["default"]["replicas"] == 1 and results["mirrored"]["replicas"] == 2
    _assert_same_training(results["default"], results["mirrored"])
    assert len(results["default"]["run_bop"]["losses"]) == 4  # 2 epochs × 2 steps


def test_multiworker_matches_one_device(results):
    assert results["multiworker"]["replicas"] >= 1
    _assert_same_training(results["default"], results["multiworker"])

"""benchmarks/training.py end to end on real Fashion-MNIST (2,048 training images, 2 epochs): the JSON has the
keys the issue names, the table is printed, and bad command lines are refused before any data is read."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "training.py"


def _run(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True,
                          env=environment, timeout=900)


def test_small_run_writes_the_issue_keys(tmp_path):
    output = tmp_path / "training.json"
    run = _run("--epochs", "2", "--train-subset", "2048", "--techniques", "float", "bireal_distillation",
               "two_step", "--output", str(output))
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["dataset"] == "fashion_mnist" and result["epochs"] == 2
    assert [r["technique"] for r in result["runs"]] == ["float", "bireal_distillation", "two_step"]
    for r in result["runs"]:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["train_seconds"] > 0
    # 32 steps on 2,048 images: well above chance (0.1) for the float model; measured 0.80.
    assert 0.4 < result["float_test_accuracy"] == result["runs"][0]["test_accuracy"]
    best = max(result["runs"][1:], key=lambda r: r["test_accuracy"])
    assert result["best_binary"]["technique"] == best["technique"]
    gap = 100 * (result["float_test_accuracy"] - best["test_accuracy"])
    assert result["best_binary"]["gap_to_float_points"] == pytest.approx(gap, abs=0.01)
    assert "best binary:" in run.stdout and "two_step" in run.stdout


@pytest.mark.parametrize("arguments, message", [
    (["--epochs", "1", "--techniques", "float", "two_step"], "--epochs must be >= 1 (>= 2 with two_step"),
    (["--epochs", "0", "--techniques", "float"], "--epochs must be >= 1"),
    (["--techniques", "distillation"], "distillation needs the float run"),
    (["--techniques", "bireal_distillation", "float"], "bireal_distillation needs the float run"),
])
def test_bad_command_lines_are_refused(arguments, message):
    run = _run(*arguments)
    assert run.returncode == 2 and message in run.stderr

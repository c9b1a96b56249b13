"""The zoo training command end to end on real data: every pretrained model is listed; an image model trains
deterministically (twice, the same file byte for byte), under MirroredStrategy over 2 logical CPUs, and as a
2-worker MultiWorkerMirroredStrategy cluster on localhost (tf-keras, the default --backend legacy), and as a Keras 3
model on JAX; each text recipe runs one step. Each run goes through the
real pipeline: training, compact weights file, reload, scores, LCE conversion."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import keras_bnn.zoo as zoo
from keras_bnn.zoo.training.distribution import make_strategy

NAME = "binary_cnn.mnist"
COMMON = [sys.executable, "-m", "keras_bnn.zoo.training.train", NAME, "--epochs", "1", "--train-examples", "600"]


def _environment(**extra):
    return {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _tagged(output: str, tag: str) -> dict:
    [line] = [line for line in output.splitlines() if line.startswith(tag + " ")]
    return json.loads(line[len(tag) + 1:])


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _check_card(card, weights_dir):
    assert card["replicas"] == 2
    assert card["bitpacked_share"] == 1.0
    assert 0.15 < card["scores"]["test"] <= 1.0  # 6 steps on 600 images: above chance (0.1), measured 0.24
    assert card["command"].startswith(f"python -m keras_bnn.zoo.training.train {NAME} --seed 0 --epochs 1")
    assert (weights_dir / f"{NAME}.npz").stat().st_size == card["size_bytes"]


@pytest.mark.parametrize("name, cpu_replicas", [("nope", 1), ("default", 0), ("mirrored", True)])
def test_bad_strategy_arguments_are_refused(name, cpu_replicas):
    with pytest.raises(ValueError, match="strategy must be|cpu_replicas must be"):
        make_strategy(name, cpu_replicas)


def test_mirrored_over_two_logical_cpus(tmp_path):
    command = COMMON + ["--strategy", "mirrored", "--cpu-replicas", "2", "--weights-dir", str(tmp_path / "weights")]
    run = subprocess.run(command, capture_output=True, text=True, env=_environment(), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    card = _tagged(run.stdout, "CARD")
    _check_card(card, tmp_path / "weights")
    assert "--strategy mirrored --cpu-replicas 2" in card["command"]


def test_two_workers_on_localhost(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        command = COMMON + ["--strategy", "multiworker", "--weights-dir", str(tmp_path / f"weights{index}")]
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=_environment(TF_CONFIG=config)))
    outputs = [worker.communicate(timeout=900) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    _check_card(_tagged(outputs[0][0], "CARD"), tmp_path / "weights0")  # worker 0 is the chief
    assert _tagged(outputs[1][0], "WORKER")["replicas"] == 2
    assert not (tmp_path / "weights1").exists()


def test_help_lists_every_pretrained_model():
    run = subprocess.run([sys.executable, "-m", "keras_bnn.zoo.training.train", "--help"], capture_output=True,
                         text=True, env=_environment(), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    for name in zoo.list_models(pretrained=True):
        assert name in run.stdout


def test_training_is_deterministic(tmp_path):
    """The same command twice: the same weights file, byte for byte (op determinism, seeded data order)."""
    cards = []
    for run_index in range(2):
        command = COMMON + ["--weights-dir", str(tmp_path / f"run{run_index}")]
        run = subprocess.run(command, capture_output=True, text=True, env=_environment(), timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
        cards.append(_tagged(run.stdout, "CARD"))
    assert cards[0]["deterministic"] is True and cards[0]["sha256"] == cards[1]["sha256"]
    assert (tmp_path / "run0" / f"{NAME}.npz").read_bytes() == (tmp_path / "run1" / f"{NAME}.npz").read_bytes()


@pytest.mark.parametrize("name, arguments", [
    ("binary_gru_lm.tiny_shakespeare", ["--steps", "1"]),
    ("binary_transformer.sst2", ["--epochs", "1", "--train-examples", "128"]),
])
def test_a_text_recipe_runs_one_step_through_the_whole_pipeline(name, arguments, tmp_path):
    command = [sys.executable, "-m", "keras_bnn.zoo.training.train", name, *arguments, "--weights-dir", str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, env=_environment(), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    card = _tagged(run.stdout, "CARD")
    entry = zoo.entry(name)
    assert set(card["scores"]) >= {entry.pretrained.test_split} and set(card["float_twin_scores"])
    assert card["bitpacked_share"] == 1.0 and (tmp_path / f"{name}.npz").stat().st_size == card["size_bytes"]
    assert zoo.tokenizer(name, tmp_path / f"{name}.npz")  # the vocabulary is stored in the file


def test_keras3_image_recipe_on_jax_through_the_whole_pipeline(tmp_path):
    """--backend jax trains the Keras 3 model on JAX; its file loads into the Keras 3 and the tf-keras model alike."""
    command = COMMON + ["--backend", "jax", "--weights-dir", str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, env=_environment(KERAS_BACKEND="jax"), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    card = _tagged(run.stdout, "CARD")
    assert card["backend"] == "jax" and card["replicas"] == 1
    assert card["command"].startswith(f"python -m keras_bnn.zoo.training.train {NAME} --seed 0 --backend jax")
    assert 0.15 < card["scores"]["test"] <= 1.0  # 6 steps on 600 images: above chance (0.1)
    assert card["binary_kernels_as_bits"] == 5 and card["dense_fallbacks"] == []
    assert card["bitpacked_share"] == 1.0  # converted from the tf-keras model loaded from the file
    path = tmp_path / f"{NAME}.npz"
    assert path.stat().st_size == card["size_bytes"]
    images = np.random.default_rng(0).uniform(0, 255, (8, 28, 28, 1)).astype(np.float32)
    outputs = []
    for legacy in (False, True):
        model = zoo.get(NAME, legacy=legacy)
        zoo.weights.load_compact(model, path, sha256=card["sha256"])
        outputs.append(model.predict(images, verbose=0))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arguments, message", [
    (["binary_gru_lm.tiny_shakespeare", "--backend", "jax"], "with --backend legacy"),
    ([NAME, "--backend", "torch", "--strategy", "mirrored"], "without --strategy"),
    ([NAME, "--backend", "mxnet"], "invalid choice"),
])
def test_keras3_backends_refuse_what_they_do_not_train(arguments, message):
    run = subprocess.run([sys.executable, "-m", "keras_bnn.zoo.training.train", *arguments], capture_output=True,
                         text=True, env=_environment(), timeout=300)
    assert run.returncode == 2 and message in run.stderr

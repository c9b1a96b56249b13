"""Model cards and the `keras-bnn zoo` commands."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import keras_bnn.zoo as zoo
from keras_bnn.cli import main as cli_main


def main(argv):
    """The zoo commands: `keras-bnn zoo ...`."""
    return cli_main(["zoo", *argv])


PRETRAINED = zoo.list_models(pretrained=True)


@pytest.mark.parametrize("name", PRETRAINED)
def test_card_states_the_pretrained_fields(name):
    card = zoo.model_card(name)
    entry = zoo.entry(name)
    config = entry.pretrained
    metric = zoo.METRICS[config.metric]
    assert card.startswith(f"# {name}\n")
    for text in (config.sha256, f"{config.size_bytes:,} bytes", metric.format(config.test_score), config.command,
                 f"{config.flatbuffer_bytes:,} bytes", config.license, f"| test {metric.label} (",
                 f"{config.test_examples:,} {entry.dataset} {config.test_split} "):
        assert text in card
    if config.float_twin_test_score is not None:
        assert metric.format(config.float_twin_test_score) in card


def test_text_cards_state_their_metric_and_flatbuffer_macs():
    card = zoo.model_card("binary_gru_lm.tiny_shakespeare")
    assert "| test bits per character (55,744 tiny_shakespeare test characters) | 2.5073 bpc |" in card
    assert "MACs per character (LCE flatbuffer" in card and "2.458e5 binary" in card
    assert "65-token vocabulary" in card
    card = zoo.model_card("binary_transformer.sst2")
    assert "| test top-1 accuracy (872 sst2 validation sentences) | 81.65% |" in card
    assert "MACs per sentence of 48 tokens" in card and "zoo.tokenizer" in card


def test_definition_card_says_there_are_no_weights():
    card = zoo.model_card("xnornet18.imagenet")
    assert "definition only" in card and "Compared with the Bi-Real Net paper" in card
    assert "| BOPs (binary MACs) | 1.7e+09 |" in card


def test_cli_list_and_card(capsys):
    assert main(["list", "*.mnist"]) == 0
    assert capsys.readouterr().out.split() == ["binary_cnn.mnist", "binarynet_mlp.mnist"]
    assert main(["list", "--pretrained"]) == 0
    assert capsys.readouterr().out.split() == PRETRAINED
    assert main(["card", "binary_cnn.mnist"]) == 0
    assert capsys.readouterr().out.startswith("# binary_cnn.mnist")


def test_cli_errors_are_one_line(capsys):
    assert main(["card", "binary_cnn.mnst"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "'binary_cnn.mnist'" in error
    assert main(["evaluate", "birealnet18.imagenet"]) == 2
    assert "has no pretrained weights" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_cli_evaluate_prints_card_and_measured(capsys):
    name = "xnornet_small.fashion_mnist"  # the quickest to evaluate
    assert main(["evaluate", name, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["matches"] is True and result["card"] == result["measured"]


def test_cli_evaluate_prints_the_metric_of_a_text_model(capsys):
    assert main(["evaluate", "binary_transformer.sst2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["binary_transformer.sst2 on sst2 validation (872 examples)",
                     "  top-1 accuracy  card: 81.65%  measured: 81.65%", "  matches the card"]
    assert main(["evaluate", "binary_transformer.sst2", "--split", "train[:50]", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["card"] is None and result["examples"] == 50 and result["metric"] == "top1_accuracy"


def test_cli_json_on_an_empty_data_folder_is_one_json_document_on_stdout(tmp_path):
    """First use on a fresh machine: the dataset is prepared (TFDS reports its progress) and stdout still holds
    exactly the one JSON document; everything else goes to stderr."""
    script = pathlib.Path(sys.executable).with_name("keras-bnn")
    environment = {**os.environ, "KERAS_BNN_DATA_DIR": str(tmp_path / "data"), "TFDS_DATA_DIR": str(tmp_path / "tfds")}
    run = subprocess.run([str(script), "zoo", "evaluate", "binary_transformer.sst2", "--json"], capture_output=True,
                         text=True, env=environment, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Downloading and preparing dataset" in run.stderr  # it really was the first use
    result = json.loads(run.stdout)
    assert result["name"] == "binary_transformer.sst2" and result["matches"] is True

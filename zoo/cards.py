"""Model cards: Markdown built from a zoo entry, `larq.models.ModelProfile` and the entry's prose file."""

from __future__ import annotations

from typing import Any

import importlib_resources

from keras_bnn.zoo.registry import METRICS, TASKS, Pretrained, ZooEntry, entry

__all__ = ["operation_counts", "model_card"]

_BATCHNORM_NAMES = ("batch_norm", "shortcut_norm")


def operation_counts(model: Any) -> dict[str, int]:
    """Parameter and MAC counts of a tf-keras `model` (``zoo.get(name, legacy=True)``) from
    `larq.models.ModelProfile`.

    larq counts each 32-bit weight of a convolution-like layer as MACs per output pixel, so the BatchNorm
    inside a `BiRealConv2D` shows up as float MACs; `float_macs_excluding_batchnorm` leaves those out (an
    inference BatchNorm folds into a multiply-add per element, which papers do not count as FLOPs).

    Returns:
        `params`, `binary_params`, `float_params`, `memory_bits` (larq's model size: 1 bit per binary
        weight, 32 per other), `binary_macs`, `float_macs`, `float_macs_excluding_batchnorm`.

    Example:
        >>> import keras_bnn.zoo
        >>> from keras_bnn.zoo.cards import operation_counts
        >>> counts = operation_counts(keras_bnn.zoo.get("binarynet_mlp.mnist", legacy=True))
        >>> counts["binary_macs"], counts["float_macs"]
        (8409088, 1605632)
    """
    import larq
    import tensorflow as tf

    profile = larq.models.ModelProfile(model)
    batchnorm_macs = 0
    for layer, layer_profile in zip(model.layers, profile.layer_profiles):
        if isinstance(layer, tf.keras.layers.BatchNormalization) or not layer_profile.op_profiles:
            continue
        # larq makes one MAC entry per non-bias weight of the layer, in the layer's weight order.
        counted = [weight for weight in layer.weights if "bias" not in weight.name]
        for weight, op in zip(counted, layer_profile.op_profiles):
            if op.precision == 32 and any(part in weight.name for part in _BATCHNORM_NAMES):
                batchnorm_macs += op.n
    float_macs = profile.op_count("mac", 32)
    return {
        "params": int(model.count_params()),
        "binary_params": int(profile.weight_count(1)),
        "float_params": int(profile.weight_count(32)),
        "memory_bits": int(profile.memory),
        "binary_macs": int(profile.op_count("mac", 1)),
        "float_macs": int(float_macs),
        "float_macs_excluding_batchnorm": int(float_macs - batchnorm_macs),
    }


def _format_count(value: float) -> str:
    return f"{value:.3g}" if value < 1e4 else f"{value:.3e}".replace("e+0", "e").replace("e+", "e")


def _macs_line(spec: ZooEntry, counts: dict[str, int], config: Pretrained | None) -> str:
    if TASKS[spec.task].fixed_input:
        return (
            f"- MACs per image (`larq.models.ModelProfile`): {_format_count(counts['binary_macs'])} binary, "
            f"{_format_count(counts['float_macs'])} float "
            f"({_format_count(counts['float_macs_excluding_batchnorm'])} without the BatchNorm that larq counts "
            "as MACs)"
        )
    unit = "character" if spec.task == "language_modeling" else f"sentence of {spec.input_shape[0]} tokens"
    if config is None or config.flatbuffer_macs is None:
        return "- MACs: not counted (larq's profile counts conv/dense layers only)"
    macs = config.flatbuffer_macs
    binary = macs["bitpacked"] + macs["unpacked_binary"] + macs["activation_binary"]
    return (
        f"- MACs per {unit} (LCE flatbuffer, `keras_bnn.tflite.inspect`): {_format_count(binary)} binary "
        f"({_format_count(macs['bitpacked'])} bitpacked weight x activation, "
        f"{_format_count(macs['activation_binary'])} activation x activation), {_format_count(macs['other'])} "
        "other"
    )


def _architecture_section(spec: ZooEntry, counts: dict[str, int]) -> list[str]:
    task = TASKS[spec.task]
    if task.fixed_input:
        shape = f"- Input: {spec.input_shape}, {spec.num_classes} classes ({spec.dataset})"
    else:
        length = "any length" if spec.input_shape[0] is None else f"length {spec.input_shape[0]}"
        classes = "-token vocabulary" if spec.task == "language_modeling" else " classes"
        shape = f"- Input: {task.inputs}, {length}; output: {task.outputs}; {spec.num_classes}{classes} ({spec.dataset})"
    return [
        "## Architecture",
        "",
        spec.summary,
        "",
        shape,
        f"- Features (`include_top=False`): output of layer `{spec.feature_layer}`",
        f"- Parameters: {counts['params']:,} ({counts['binary_params']:,} binary, "
        f"{counts['float_params']:,} 32-bit); larq model size {counts['memory_bits'] / 8 / 1024:,.1f} KiB",
        _macs_line(spec, counts, spec.pretrained),
        f"- Paper: {spec.paper}",
    ]


def _paper_section(figures, counts: dict[str, int]) -> list[str]:
    ours_ops = counts["binary_macs"] / 64 + counts["float_macs_excluding_batchnorm"]
    paper_flops = figures["ops"] - figures["bops"] / 64

    def gap(ours: float, theirs: float) -> str:
        return f"{(ours - theirs) / theirs:+.1%}"

    return [
        "",
        "## Compared with the Bi-Real Net paper",
        "",
        "The Bi-Real Net paper's comparison table gives BOPs (binary MACs) and OPs = BOPs/64 + FLOPs; ReActNet's "
        "table quotes the same OPs. The float part below is derived as OPs - BOPs/64. Ours are counted by "
        "`larq.models.ModelProfile` on this definition (float MACs without BatchNorm).",
        "",
        "| figure | paper | this definition | difference |",
        "| --- | --- | --- | --- |",
        f"| BOPs (binary MACs) | {figures['bops']:.3g} | {_format_count(counts['binary_macs'])} | "
        f"{gap(counts['binary_macs'], figures['bops'])} |",
        f"| FLOPs (float MACs, derived) | {paper_flops:.3g} | "
        f"{_format_count(counts['float_macs_excluding_batchnorm'])} | "
        f"{gap(counts['float_macs_excluding_batchnorm'], paper_flops)} |",
        f"| OPs = BOPs/64 + FLOPs | {figures['ops']:.3g} | {_format_count(ours_ops)} | "
        f"{gap(ours_ops, figures['ops'])} |",
        f"| parameters (ResNet-18) | {figures['resnet18_params']:.4g} | {counts['params']:,} | "
        f"{gap(counts['params'], figures['resnet18_params'])} |",
    ]


def _weights_section(spec: ZooEntry, config: Pretrained) -> list[str]:
    metric = METRICS[config.metric]
    examples = TASKS[spec.task].examples
    twin = metric.format(config.float_twin_test_score) if config.float_twin_test_score is not None else "not trained"
    share = f"{config.bitpacked_share:.1%}" if config.bitpacked_share is not None else "no binary MACs"
    scores = [f"| test {metric.label} ({config.test_examples:,} {spec.dataset} {config.test_split} {examples}) | "
              f"{metric.format(config.test_score)} |"]
    scores += [f"| {metric.label} on {split} | {metric.format(value)} |" for split, value in config.scores.items()
               if split != config.test_split]
    return [
        "",
        "## Pretrained weights",
        "",
        "| field | value |",
        "| --- | --- |",
        *scores,
        f"| float twin test {metric.label} (same layers, no quantizers) | {twin} |",
        f"| weights file | `{config.weights_file}`, {config.size_bytes:,} bytes |",
        f"| sha256 | `{config.sha256}` |",
        f"| LCE flatbuffer | {config.flatbuffer_bytes:,} bytes, {share} of binary MACs bitpacked |",
        f"| preprocessing | {config.preprocessing} |",
        f"| training | {config.epochs} epochs, seed {config.seed}, {config.train_wall_time_s / 60:.1f} min |",
        f"| reproduce | `{config.command}` |",
        f"| download | {config.url or 'packaged with keras-bnn (no release URL)'} |",
        f"| license | {config.license} |",
        "",
        f"Check it: `keras-bnn zoo evaluate {spec.name}` (or `keras_bnn.zoo.evaluate({spec.name!r})`): the Keras 3 "
        "model on the backend `KERAS_BACKEND` names (TensorFlow, JAX or PyTorch; `--legacy`: the tf-keras model the "
        "converter takes), from the same file.",
    ]


def card_prose(spec: ZooEntry) -> str:
    """The entry's card prose (Markdown, package data in `zoo/cards/`), or "" when it has none."""
    if spec.card is None:
        return ""
    return (importlib_resources.files("keras_bnn.zoo") / "cards" / spec.card).read_text(encoding="utf-8").strip()


def model_card(name: str) -> str:
    """The model card of a registered model, as markdown.

    It states the architecture and its counts (from `larq.models.ModelProfile`), and, for models with pretrained
    weights, every field of their `Pretrained` (file size, sha256, measured scores, flatbuffer size, training
    command), then the entry's prose. Entries with paper figures compare their counts with the paper's.

    Raises:
        ValueError: Unknown name (with close names).

    Example:
        >>> import keras_bnn.zoo
        >>> print(keras_bnn.zoo.model_card("binary_cnn.mnist").splitlines()[0])
        # binary_cnn.mnist
    """
    spec = entry(name)
    from keras_bnn.zoo.api import get

    counts = operation_counts(get(name, legacy=True))  # larq's profile counts tf-keras models
    lines = [f"# {name}", ""] + _architecture_section(spec, counts)
    if spec.paper_figures is not None:
        lines += _paper_section(spec.paper_figures, counts)
    if spec.pretrained is not None:
        lines += _weights_section(spec, spec.pretrained)
    else:
        lines += ["", "## Pretrained weights", "", "None: this is a definition only (`pretrained=False`)."]
    prose = card_prose(spec)
    if prose:
        lines += ["", "## Notes", "", prose]
    return "\n".join(lines) + "\n"

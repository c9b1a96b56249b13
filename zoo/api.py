"""The zoo's public API for listing and building models: `list_models` and `get`."""

from __future__ import annotations

from typing import Any

from keras_bnn.zoo.models._kit import kit
from keras_bnn.zoo.registry import TASKS, ZooEntry, entry, list_registered
from keras_bnn.zoo.weights import load_pretrained

__all__ = ["get", "list_models"]


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered model names (`architecture.tag`) matching a shell-style pattern, sorted.

    Args:
        pattern: `fnmatch` pattern, e.g. `"*.mnist"` or `"birealnet*"`.
        pretrained: Only the names that have pretrained weights.

    Returns:
        The matching names.

    Example:
        >>> import keras_bnn.zoo as zoo
        >>> zoo.list_models("*.imagenet")
        ['birealnet18.imagenet', 'xnornet18.imagenet']
    """
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be a bool, got {pretrained!r}.")
    names = list_registered(pattern)
    return [name for name in names if entry(name).pretrained is not None] if pretrained else names


def _check_pretrained_fits(found: ZooEntry, input_shape: tuple[int, ...] | None, num_classes: int | None) -> None:
    if num_classes is not None and num_classes != found.num_classes:
        raise ValueError(
            f"pretrained=True: the weights of {found.name!r} have a {found.num_classes}-class head, but "
            f"num_classes={num_classes!r} was asked. Build it with pretrained=False, or with "
            f"pretrained=True, include_top=False for the {found.name!r} features and add your own head."
        )
    if TASKS[found.task].fixed_input and input_shape is not None and tuple(input_shape) != found.input_shape:
        raise ValueError(
            f"pretrained=True: the weights of {found.name!r} were trained on inputs of shape "
            f"{found.input_shape}, but input_shape={tuple(input_shape)!r} was asked."
        )


def get(
    name: str,
    pretrained: bool = False,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    include_top: bool = True,
    batch_size: int | None = None,
    legacy: bool = False,
) -> Any:
    """Build a zoo model, optionally with its pretrained weights: a Keras 3 model (any backend), or with
    ``legacy=True`` the tf-keras + larq model of the same definition and weights (what ``keras_bnn.tflite``
    converts, until the converter takes Keras 3 models).

    Args:
        name: A name from `list_models()`, `architecture.tag`.
        pretrained: Load the weights trained here (checked by sha256 first; see `keras_bnn.zoo.weights`).
        input_shape: Input shape without the batch dimension; default the dataset's. With pretrained weights
            an image model's must be the one they were trained with; a text model's is `(length,)`, any
            length its positions allow (None: any).
        num_classes: Classes of the classification head (a language model's vocabulary size); default the
            dataset's. Only with include_top=True; with pretrained weights it must be the trained head's.
        include_top: Keep the classifier (a language model's output layer). False ends the model at its last
            feature layer; with pretrained=True that is the pretrained backbone (the head's weights are loaded
            and dropped).
        batch_size: Fixed batch size of the input (LCE converts with a fixed batch); None leaves it open.
        legacy: True builds the tf-keras model (`tf.keras`, larq and ``keras_bnn.legacy`` layers; imports them
            and selects tf-keras as `tf.keras`); False (default) the Keras 3 model (`keras_bnn.layers`).

    Returns:
        A Functional `keras.Model` made of keras_bnn and Keras layers (`legacy=True`: a `tf.keras.Model` made
        of larq, keras_bnn.legacy and tf-keras layers).

    Raises:
        ValueError: Unknown name (the message lists close names), a model without pretrained weights asked
            with pretrained=True, num_classes/input_shape that do not fit the weights, num_classes with
            include_top=False, or bad shapes/sizes.
        TypeError: Arguments of the wrong type.
        keras_bnn.zoo.WeightsFileError: The weights file is missing, corrupted or truncated.

    Example:
        >>> import keras_bnn.zoo as zoo
        >>> zoo.get("binary_cnn.mnist", num_classes=3, batch_size=1).output_shape
        (1, 3)
    """
    found = entry(name)
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be a bool, got {pretrained!r}.")
    if not isinstance(legacy, bool):
        raise TypeError(f"legacy must be a bool, got {legacy!r}.")
    if not isinstance(include_top, bool):
        raise TypeError(f"include_top must be a bool, got {include_top!r}.")
    if num_classes is not None and not include_top:
        raise ValueError(
            f"num_classes={num_classes!r} was given with include_top=False; a model without its "
            "classification head has no classes. Drop num_classes or set include_top=True."
        )
    if pretrained:
        if found.pretrained is None:
            with_weights = [other for other in list_registered() if entry(other).pretrained is not None]
            raise ValueError(f"Model {name!r} has no pretrained weights; these do: {with_weights}. Build it with "
                             "pretrained=False.")
        _check_pretrained_fits(found, input_shape, num_classes)
    model = found.builder(
        input_shape=tuple(input_shape) if input_shape is not None else found.input_shape,
        num_classes=num_classes if num_classes is not None else found.num_classes,
        include_top=include_top or pretrained,
        batch_size=batch_size,
        legacy=legacy,
    )
    if not pretrained:
        return model
    load_pretrained(model, found.pretrained)
    if include_top:
        return model
    features = model.get_layer(found.feature_layer).output
    return kit(legacy).keras.Model(model.inputs, features, name=f"{model.name}_features")

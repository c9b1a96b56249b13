"""tf.distribute strategies for zoo training: create one (before any other op), and tell the chief."""

from __future__ import annotations

import tensorflow as tf

from keras_bnn._validation import check_positive_int

__all__ = ["STRATEGIES", "is_chief", "make_strategy"]

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str, cpu_replicas: int = 1) -> tf.distribute.Strategy:
    """The tf.distribute strategy `name` (one of STRATEGIES); create it before any other TensorFlow op runs.

    Args:
        name: "default" (no distribution), "mirrored" or "multiworker" (cluster from the `TF_CONFIG` variable).
        cpu_replicas: Split the CPU into this many logical devices first and mirror over them (for "mirrored"
            on a machine without GPUs; also lets "multiworker" run several replicas per worker).

    Raises:
        ValueError: `name` is unknown or `cpu_replicas` < 1.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    check_positive_int("cpu_replicas", cpu_replicas)
    devices = None
    if cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        devices = [f"/cpu:{index}" for index in range(cpu_replicas)]
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes outputs: always, except on the non-chief workers of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief

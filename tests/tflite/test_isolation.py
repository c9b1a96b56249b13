"""The native converter runs in a worker process: its crash is a ConverterCrashError, the caller lives on.

One worker serves every conversion of a process (same pid, same bytes), a crash costs only that conversion (the
next one gets a new worker), a forked process gets its own worker, and each request sees the caller's environment.

Also: larq-zoo's DoReFaNet pattern (2-bit DoReFa inputs, a sign kernel quantizer with a custom gradient) converts,
and a float matmul with a binary kernel of more than 2**25 weights (on which LCE's converter crashes) is refused
with a ValueError naming the layer before the converter runs.
"""

import json
import os

import larq as lq
import larq_compute_engine as lce
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.tflite import ConverterCrashError, convert
from keras_bnn.tflite.isolation import (CRASH_VARIABLE, lce_convert_keras_model, run_isolated, shutdown_worker,
                                       worker_pid)


def magnitude_aware_sign_unclipped(x):
    """larq-zoo 2.4's DoReFaNet kernel quantizer (larq sign times the mean |w|, identity gradient)."""
    scale = tf.stop_gradient(tf.reduce_mean(tf.abs(x)))

    @tf.custom_gradient
    def _sign(x):
        return lq.math.sign(x) * scale, lambda dy: dy

    return _sign(x)


magnitude_aware_sign_unclipped.precision = 1  # as larq's set_precision(1)


def _dorefa_net(units=32, inputs_shape=(32, 32, 3)):
    """DoReFaNet's layer pattern, small: float conv, [QuantConv2D + BatchNorm (+ MaxPool)], QuantDense, clip, head."""
    binary = dict(input_quantizer=lq.quantizers.DoReFaQuantizer(k_bit=2),
                  kernel_quantizer=magnitude_aware_sign_unclipped, use_bias=False)
    inputs = tf.keras.Input(inputs_shape)
    x = tf.keras.layers.Conv2D(8, 4, strides=2)(inputs)
    for filters, pool in ((16, True), (16, False)):
        x = lq.layers.QuantConv2D(filters, 3, padding="same", **binary)(x)
        x = tf.keras.layers.BatchNormalization(scale=False, epsilon=1e-4)(x)
        if pool:
            x = tf.keras.layers.MaxPool2D(3, 2, padding="same")(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(units, name="dorefa_dense", **binary)(x)
    x = tf.keras.layers.BatchNormalization(scale=False, epsilon=1e-4)(x)
    x = tf.keras.layers.Activation(lambda t: tf.clip_by_value(t, 0.0, 1.0))(x)
    outputs = tf.keras.layers.Activation("softmax")(tf.keras.layers.Dense(10)(x))
    return tf.keras.Model(inputs, outputs, name="dorefanet_pattern")


def _binary_cnn():
    inputs = tf.keras.Input((8, 8, 16), batch_size=1)
    x = lq.layers.QuantConv2D(16, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Flatten()(x), name="tiny_bnn")


def test_same_bytes_as_lce_in_process():
    model = _binary_cnn()
    assert lce_convert_keras_model(model) == lce.convert_keras_model(model)


def test_conversions_reuse_one_worker():
    shutdown_worker()
    assert worker_pid() is None
    model = _binary_cnn()
    first = lce_convert_keras_model(model)
    pid = worker_pid()
    assert pid is not None and pid != os.getpid()
    assert lce_convert_keras_model(model) == first
    assert worker_pid() == pid
    assert run_isolated("os:getpid", target="demo", model_name="none") == pid
    shutdown_worker()
    assert worker_pid() is None
    with pytest.raises(ProcessLookupError):  # the worker process has ended (and was reaped)
        os.kill(pid, 0)


def test_dorefanet_pattern_converts():
    flatbuffer = convert(_dorefa_net())
    assert flatbuffer[4:8] == b"TFL3"


def test_large_binary_float_matmul_is_refused_before_the_converter():
    inputs = tf.keras.Input((8192,))
    dense = lq.layers.QuantDense(4097, input_quantizer=lq.quantizers.DoReFaQuantizer(k_bit=2),
                                 kernel_quantizer=magnitude_aware_sign_unclipped, use_bias=False, name="big_fc")
    model = tf.keras.Model(inputs, dense(inputs))
    with pytest.raises(ValueError, match=r"'big_fc' \(QuantDense\).*8192x4097.*2\*\*25"):
        convert(model)


@pytest.mark.parametrize("crash, signal_name", [("abort", "SIGABRT"), ("segfault", "SIGSEGV")])
def test_a_crash_in_the_converter_is_an_error(monkeypatch, crash, signal_name):
    model = _binary_cnn()
    expected = convert(model)
    crashed_pid = worker_pid()
    monkeypatch.setenv(CRASH_VARIABLE, crash)  # read per conversion: the running worker gets it with the request
    with pytest.raises(ConverterCrashError, match=f"'lce'.*{signal_name}.*'tiny_bnn'") as error:
        convert(model)
    assert isinstance(error.value, RuntimeError)
    assert (error.value.signal_name, error.value.target, error.value.model_name) == (signal_name, "lce", "tiny_bnn")
    assert "Fatal Python error" in error.value.stderr_tail  # the worker's stderr, during this conversion
    assert worker_pid() is None
    with pytest.raises(ProcessLookupError):
        os.kill(crashed_pid, 0)
    monkeypatch.delenv(CRASH_VARIABLE)
    assert convert(model) == expected  # this process lives on, and converts, the same bytes
    assert worker_pid() not in (None, crashed_pid)  # in a new worker


def test_an_exception_in_the_child_is_raised_as_it_is():
    with pytest.raises(json.JSONDecodeError):
        run_isolated("json:loads", ("{",), target="demo", model_name="none")
    assert run_isolated("os.path:join", ("a", "b"), target="demo", model_name="none") == os.path.join("a", "b")


def test_each_request_sees_the_callers_environment(monkeypatch):
    monkeypatch.setenv("KERAS_BNN_TEST_VALUE", "one")
    assert run_isolated("os:getenv", ("KERAS_BNN_TEST_VALUE",), target="demo", model_name="none") == "one"
    pid = worker_pid()
    monkeypatch.setenv("KERAS_BNN_TEST_VALUE", "two")
    assert run_isolated("os:getenv", ("KERAS_BNN_TEST_VALUE",), target="demo", model_name="none") == "two"
    assert worker_pid() == pid


def test_a_forked_process_gets_its_own_worker():
    assert run_isolated("os:getppid", target="demo", model_name="none") == os.getpid()
    parent_worker = worker_pid()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the forked process: its worker is its own child, and it leaves the parent's worker alone
        try:
            mine = run_isolated("os:getppid", target="demo", model_name="none") == os.getpid()
            os.write(write_end, json.dumps([mine, worker_pid() != parent_worker]).encode())
            shutdown_worker()
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        assert json.loads(answer.read()) == [True, True]
    os.waitpid(child, 0)
    assert worker_pid() == parent_worker
    assert run_isolated("os:getppid", target="demo", model_name="none") == os.getpid()

"""keras_bnn.tflite.emulation: real QEMU, real aarch64 LiteRT 2.3.0, against real x86 ai-edge-litert.

These tests need `make aarch64-setup` to have run (or KERAS_BNN_AARCH64_HOME to name a prepared folder); without
it every emulated test fails with NotSetUp, whose message names the missing pieces and the command.
"""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from keras_bnn.tflite.emulation import Aarch64, NotSetUp


def _tiny_cnn():
    inputs = tf.keras.Input((12, 12, 1), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = tf.keras.layers.MaxPooling2D()(x)
    x = tf.keras.layers.Flatten()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(5)(x))


@pytest.fixture(scope="module")
def float_flatbuffer():
    tf.keras.utils.set_random_seed(7)
    return tf.lite.TFLiteConverter.from_keras_model(_tiny_cnn()).convert()


@pytest.fixture(scope="module")
def int8_flatbuffer():
    """TFLite full-integer post-training quantization (int8 inputs, weights, activations, outputs)."""
    tf.keras.utils.set_random_seed(7)
    converter = tf.lite.TFLiteConverter.from_keras_model(_tiny_cnn())
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    samples = np.random.default_rng(0).normal(size=(32, 1, 12, 12, 1)).astype(np.float32)
    converter.representative_dataset = lambda: ([sample] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _x86(flatbuffer, inputs, use_xnnpack):
    resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_content=flatbuffer, num_threads=1, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    for detail, x in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()]


def _images(dtype, scale, seed=1):
    return [(np.random.default_rng(seed).normal(size=(1, 12, 12, 1)) * scale).astype(dtype)]


def test_missing_cache_fails_naming_the_setup_command(tmp_path):
    with pytest.raises(NotSetUp, match=r"make aarch64-setup") as error:
        Aarch64(home=tmp_path).run(b"1234TFL3", [np.zeros(1)])
    assert str(tmp_path / "READY") in str(error.value)


def test_the_emulated_python_is_aarch64():
    arm = Aarch64()
    result = arm.run_program([arm.python, "-c", "import platform; print(platform.machine())"])
    assert result.stdout.split() == ["aarch64"]


@pytest.mark.parametrize("cpu, use_xnnpack", [("cortex-a72", True), ("cortex-a72", False), ("cortex-a76", True)],
                         ids=["a72-xnnpack", "a72-builtin", "a76-xnnpack"])
def test_int8_outputs_equal_x86_bit_for_bit(int8_flatbuffer, cpu, use_xnnpack):
    samples = [_images(np.int8, 40, seed) for seed in range(3)]
    arm = Aarch64(cpu=cpu).run_samples(int8_flatbuffer, samples, use_xnnpack=use_xnnpack)
    assert len(arm) == 3
    for [arm_output], inputs in zip(arm, samples):
        [x86] = _x86(int8_flatbuffer, inputs, use_xnnpack)
        assert arm_output.dtype == np.int8 and arm_output.shape == (1, 5)
        np.testing.assert_array_equal(arm_output, x86)
        assert len(np.unique(arm_output)) > 1  # not a saturated constant, which would match trivially


@pytest.mark.parametrize("use_xnnpack", [True, False], ids=["xnnpack", "builtin"])
def test_float_outputs_equal_x86_to_float32_rounding(float_flatbuffer, use_xnnpack):
    """Float kernels sum in another order (and fuse multiply-adds) on aarch64: the last bits may differ."""
    inputs = _images(np.float32, 1)
    [arm] = Aarch64().run(float_flatbuffer, inputs, use_xnnpack=use_xnnpack)
    [x86] = _x86(float_flatbuffer, inputs, use_xnnpack)
    assert arm.dtype == np.float32 and arm.shape == (1, 5)
    np.testing.assert_allclose(arm, x86, rtol=0, atol=1e-6 * np.max(np.abs(x86)))


def test_instruction_count_is_positive_repeatable_and_follows_the_cpu(int8_flatbuffer):
    a72, inputs = Aarch64(cpu="cortex-a72"), _images(np.int8, 40)
    first, second = (a72.instructions_per_inference(int8_flatbuffer, inputs, invokes=20) for _ in range(2))
    builtin = a72.instructions_per_inference(int8_flatbuffer, inputs, invokes=20, use_xnnpack=False)
    dot_product = Aarch64(cpu="cortex-a76").instructions_per_inference(int8_flatbuffer, inputs, invokes=20)
    assert 1_000 < first < 10_000_000
    # Two runs of one program differ by a few thousand instructions (start-up), so per invoke by ~1%/n here.
    assert abs(first - second) <= 0.02 * first, (first, second)
    assert builtin != first  # the switch really changes the kernels
    assert dot_product < 0.9 * first, (dot_product, first)  # XNNPACK's SDOT kernels on the ARMv8.2 core


def test_refused_flatbuffer_and_inputs_give_value_error(float_flatbuffer):
    arm = Aarch64()
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        arm.run(b"not a flatbuffer", _images(np.float32, 1))
    # LiteRT refuses the first and dies of SIGSEGV on the second; keras_bnn's reader refuses both before LiteRT.
    for corrupt in (b"\x00\x00\x00\x00TFL3" + bytes(range(256)) * 4, b"1234TFL3" + bytes(100)):
        with pytest.raises(ValueError, match="not a valid TFLite flatbuffer"):
            arm.run(corrupt, _images(np.float32, 1))
    with pytest.raises(ValueError, match="Dimension mismatch"):
        arm.run(float_flatbuffer, [np.zeros((1, 12, 12, 2), np.float32)])


def test_import_does_not_load_lce():
    code = ("import sys, keras_bnn.tflite.emulation\n"
            "print(sorted(m for m in ('larq_compute_engine',) if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

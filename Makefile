# The two set-up commands of README.md: `make demo` and `make test`.
# Both create .venv on first use and reuse it afterwards (re-installing only when setup.cfg changes).
# `make test` runs the whole suite on Keras 3's TensorFlow backend, then the Keras 3 tests (KERAS3_TESTS) again on
# JAX and on PyTorch (the extras `jax` and `torch`, which `make test` installs; `make demo` trains on TensorFlow, or on
# JAX/PyTorch with KERAS_BACKEND set once those extras are installed).
# `make test` also prepares, once, the emulated aarch64 LiteRT its emulation tests run on (`make aarch64-setup`
# re-checks it): Debian arm64 packages, aarch64 wheels and QEMU's instruction-count plugin, in .aarch64/ or in
# $KERAS_BNN_AARCH64_HOME.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
AARCH64_HOME := $(or $(KERAS_BNN_AARCH64_HOME),.aarch64)
# The converter (and keras_bnn.legacy, larq) need tf.keras to be tf-keras 2; `keras` stays Keras 3 regardless.
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test install clean aarch64-setup

$(VENV)/.installed-base: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[portable]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-base
	$(PY) -m pip install --quiet -e ".[test,portable,jax,torch]"
	touch $@

install: $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(PY) benchmarks/demo.py

$(AARCH64_HOME)/READY: aarch64/setup.sh | $(VENV)/.installed-base
	PYTHON=$(PY) bash aarch64/setup.sh

# The tests of the Keras 3 implementation (every backend), run again on JAX and PyTorch after the whole suite ran on
# TensorFlow; tests/legacy is tf-keras only. tests/test_backends.py and tests/training/test_data_parallel.py start each
# backend in its own process themselves, so they run once, in the TensorFlow run.
KERAS3_TESTS := tests/quantizers tests/layers tests/training tests/saving tests/test_constraints.py tests/test_models.py
KERAS3_ONCE := --ignore=tests/training/test_data_parallel.py
KERAS3_BACKENDS := jax torch

test: $(VENV)/.installed-test $(AARCH64_HOME)/READY
	KERAS_BACKEND=tensorflow $(PY) -m pytest $(PYTEST_ARGS)
	@set -e; for backend in $(KERAS3_BACKENDS); do \
	  echo "== Keras 3 tests on KERAS_BACKEND=$$backend"; \
	  KERAS_BACKEND=$$backend $(PY) -m pytest $(PYTEST_ARGS) $(KERAS3_ONCE) $(KERAS3_TESTS); \
	done

aarch64-setup: $(VENV)/.installed-base
	PYTHON=$(PY) bash aarch64/setup.sh

clean:
	rm -rf $(VENV) build *.egg-info

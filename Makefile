# The two set-up commands of README.md: `make demo` and `make test`.
# Both create .venv on first use and reuse it afterwards (re-installing only when setup.cfg changes).
# `make test` runs the whole suite on Keras 3's TensorFlow backend, then the Keras 3 tests (KERAS3_TESTS) again on
# JAX and on PyTorch (the extras `jax` and `torch`, which `make test` installs; `make demo` needs neither).
# `make test` also prepares, once, the emulated aarch64 LiteRT its emulation tests run on (`make aarch64-setup`
# re-checks it): Debian arm64 packages, aarch64 wheels and QEMU's instruction-count plugin, in .aarch64/ or in
# $KERAS_BNN_AARCH64_HOME.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
AARCH64_HOME := $(or $(KERAS_BNN_AARCH64_HOME),.aarch64)
# larq needs tf.keras to be Keras 2 (tf-keras); keras_bnn sets this itself, the Makefile sets it for tools too.
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

# The tests of the Keras 3 implementation (every backend); tests/legacy is tf-keras only.
KERAS3_TESTS := tests/quantizers tests/layers tests/training tests/saving tests/test_backends.py \
	tests/test_constraints.py tests/test_models.py
KERAS3_BACKENDS := jax torch

# On each other backend: the KERAS3_TESTS that exist (git keeps no empty folder). pytest's exit code 5 (no test
# collected) passes only when none of them holds a test file yet; any other failure stops `make test`.
test: $(VENV)/.installed-test $(AARCH64_HOME)/READY
	KERAS_BACKEND=tensorflow $(PY) -m pytest $(PYTEST_ARGS)
	@for backend in $(KERAS3_BACKENDS); do \
	  paths=""; for path in $(KERAS3_TESTS); do test -e $$path && paths="$$paths $$path"; done; \
	  if [ -z "$$paths" ]; then echo "== no Keras 3 test folder yet"; continue; fi; \
	  echo "== Keras 3 tests on KERAS_BACKEND=$$backend:$$paths"; \
	  status=0; KERAS_BACKEND=$$backend $(PY) -m pytest $(PYTEST_ARGS) $$paths || status=$$?; \
	  if [ $$status -eq 5 ] && [ -z "$$(find $$paths -name 'test_*.py' 2>/dev/null)" ]; then \
	    echo "== no Keras 3 test yet in:$$paths"; \
	  elif [ $$status -ne 0 ]; then exit $$status; fi; \
	done

aarch64-setup: $(VENV)/.installed-base
	PYTHON=$(PY) bash aarch64/setup.sh

clean:
	rm -rf $(VENV) build *.egg-info

# The two set-up commands of README.md: `make demo` and `make test`.
# Both create .venv on first use and reuse it afterwards (re-installing only when setup.cfg changes).
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
	$(PY) -m pip install --quiet -e ".[test,portable]"
	touch $@

install: $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(PY) benchmarks/demo.py

$(AARCH64_HOME)/READY: aarch64/setup.sh | $(VENV)/.installed-base
	PYTHON=$(PY) bash aarch64/setup.sh

test: $(VENV)/.installed-test $(AARCH64_HOME)/READY
	$(PY) -m pytest $(PYTEST_ARGS)

aarch64-setup: $(VENV)/.installed-base
	PYTHON=$(PY) bash aarch64/setup.sh

clean:
	rm -rf $(VENV) build *.egg-info

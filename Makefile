# The two set-up commands of README.md: `make demo` and `make test`.
# Both create .venv on first use and reuse it afterwards (re-installing only when setup.cfg changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# larq needs tf.keras to be Keras 2 (tf-keras); keras_bnn sets this itself, the Makefile sets it for tools too.
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test install clean

$(VENV)/.installed-base: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-base
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(PY) benchmarks/demo.py

test: $(VENV)/.installed-test
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

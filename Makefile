# The two commands the README promises: `make demo` and `make test`.
# Both create and use a local virtual environment (.venv) themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	cd examples && ../$(PY) digits.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m pip install --quiet --no-deps dehb==0.1.2
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/multifidelity.py
	$(PY) benchmarks/speedup.py
	$(PY) benchmarks/gp_threads.py  # last: a FAIL exits non-zero without skipping the rest

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

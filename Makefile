# Two commands do everything: `make demo` and `make test`. Both create the venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KGF := $(VENV)/bin/kgfusion
# The CPU wheel of torch lies on this machine's disk; an unpinned torch would pull a CUDA build.
TORCH ?= torch==2.13.0
EXTRAS ?= dev,onnx,hpo,ui,distributed,serve,store

.PHONY: install demo test lint bench ui clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

demo: install
	HF_HUB_OFFLINE=1 $(KGF) demo

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

# every benchmark, one at a time (1.5-2 h on 2 cores), then the README results table
bench: install
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_all.py

ui: install
	HF_HUB_OFFLINE=1 $(KGF) ui

clean:
	rm -rf $(VENV) build *.egg-info

# The two commands the README opens with.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install data tcmalloc

$(BIN)/jgen: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/jgen

# tcmalloc, which jgen runs under where it is installed (optional; see jgen/host_allocator.py).
tcmalloc:
	bash scripts/get_tcmalloc.sh

install: $(BIN)/jgen tcmalloc

# Trains the VAE on scikit-learn's bundled 8x8 digits (no download, no root) and
# writes a sample grid, a reconstruction grid and the 2-D latent map.
demo: install
	$(BIN)/python -m jgen.demo --workdir runs/demo

# The Fashion-MNIST IDX files and the fortunes corpus the tests read: nothing if they are there,
# else apt-get install (root), else the .deb unpacked into ~/.cache/jgen (no root).
data:
	bash scripts/get_fashion_mnist.sh
	bash scripts/get_fortunes.sh

test: install data
	$(BIN)/python -m pytest -n 2 --dist loadfile

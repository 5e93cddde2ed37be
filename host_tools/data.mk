# Data targets.  Included from the top Makefile (`-include host_tools/data.mk`)
# or run on their own: `make -f host_tools/data.mk data-subset MNIST_DIR=...`.
#
#   data            stream files for the board from the shipped subset -> out/data
#   data-full       the same from the full dataset in $(MNIST_DIR) -> out/data-full
#   data-subset     regenerate data/mnist-subset from the full dataset (maintainers)
#   data-check      checksums of the shipped subset

# Inside the top Makefile: its venv python (built first); standalone: the venv
# if `make setup` made one.
DATA_PY ?= $(or $(PY),build/venv/bin/python)
DATA_DEPS ?= $(if $(VENV),$(VENV)/.stamp)
MNIST_DIR ?= ../shared/data/mnist
DATA_OUT ?= out/data
DATA_SEED ?= 0
DATA_ENV := PYTHONPATH=host_tools

.PHONY: data data-full data-subset data-check

data: $(DATA_OUT)/manifest.json
$(DATA_OUT)/manifest.json: data/mnist-subset/SHA256SUMS $(wildcard data/mnist-subset/*.gz) \
		host_tools/qtrain_host/stream.py host_tools/qtrain_host/datasets.py | $(DATA_DEPS)
	$(DATA_ENV) $(DATA_PY) -m qtrain_host prepare --data data/mnist-subset --out $(DATA_OUT) --seed $(DATA_SEED)

data-full:
	$(DATA_ENV) $(DATA_PY) -m qtrain_host prepare --data $(MNIST_DIR) --out out/data-full --seed $(DATA_SEED)

data-subset:
	$(DATA_ENV) $(DATA_PY) -m qtrain_host subset --data $(MNIST_DIR) --out data/mnist-subset \
		--train-per-class 600 --test-per-class 100 --seed 0

data-check:
	$(DATA_ENV) $(DATA_PY) -m qtrain_host info data/mnist-subset

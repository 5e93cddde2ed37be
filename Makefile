# qtrain: every entry point.  `make demo` runs the main job, `make test` the tests.
# Both set up what they need first: Debian packages, a venv with pinned Python
# packages, MicroPython 1.26.1, the Unix port, emulated-board firmware, natmods.
# Everything built or downloaded goes to build/ and dist/ (both git-ignored).

SHELL := /bin/bash
.DEFAULT_GOAL := help

MPY_VERSION := 1.26.1
BUILD := $(CURDIR)/build
VENV := $(BUILD)/venv
PY := $(VENV)/bin/python
# A user's own MicroPython checkout wins; otherwise we fetch the pinned source.
MPY_DIR ?= $(BUILD)/micropython
UNIX_MP := $(BUILD)/unix/micropython
ARCHS := x64 armv6m armv7m armv7emsp
QEMU_BOARDS := qemu-m0 qemu-m3 qemu-m4
# _qtrain: the uint8 kernels (what a board loads); _qtrain_float: float32/mixed.
NATMODS := $(foreach a,$(ARCHS),dist/$(a)_6.3/_qtrain.mpy dist/$(a)_6.3/_qtrain_float.mpy)
NATMOD_SRC := $(wildcard natmod/*.c natmod/*.h natmod/kernels/*.c natmod/kernels/*.h) natmod/Makefile
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
export PATH := $(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)/host_tools
export QTRAIN_ROOT := $(CURDIR)
export MPY_DIR

APT_PACKAGES := build-essential gcc-arm-none-eabi libnewlib-arm-none-eabi \
	qemu-system-arm libffi-dev pkg-config python3-venv xz-utils

.PHONY: help setup deps venv micropython unix firmware dist test test-quick demo deploy clean distclean

help:
	@echo "make demo   train a VAE + heads on the Unix port, write out/demo/"
	@echo "make test   set up everything missing, build, run the test suite"
	@echo "make dist   build dist/<arch>_6.3/_qtrain.mpy and _qtrain_float.mpy for: $(ARCHS)"
	@echo "make setup  only install/build the toolchain (idempotent)"

# ---- setup: each step leaves a stamp, so a second run does nothing ----------

deps: $(BUILD)/.apt-stamp
$(BUILD)/.apt-stamp:
	@mkdir -p $(BUILD)
	@bash host_tools/bootstrap/install_deps.sh $(APT_PACKAGES)
	@touch $@

venv: $(VENV)/.stamp
$(VENV)/.stamp: host_tools/requirements.txt | $(BUILD)/.apt-stamp
	@echo "setup: Python packages into $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV) || { echo "setup: could not create a venv. Fix: apt-get install python3-venv" >&2; exit 1; }
	@$(PY) -m pip install -q --disable-pip-version-check -r host_tools/requirements.txt \
		|| { echo "setup: pip install failed (see above). Fix: check the network / pip config, then rerun make" >&2; exit 1; }
	@touch $@

micropython: $(MPY_DIR)/py/dynruntime.mk
$(MPY_DIR)/py/dynruntime.mk: | $(BUILD)/.apt-stamp
	@bash host_tools/bootstrap/fetch_micropython.sh $(MPY_DIR)

$(MPY_DIR)/mpy-cross/build/mpy-cross: | $(MPY_DIR)/py/dynruntime.mk
	@echo "setup: building mpy-cross"
	@$(MAKE) -s -C $(MPY_DIR)/mpy-cross -j$(JOBS) >$(BUILD)/mpy-cross.log 2>&1 \
		|| { tail -20 $(BUILD)/mpy-cross.log; echo "setup: mpy-cross build failed, log: $(BUILD)/mpy-cross.log" >&2; exit 1; }

# The +ds tarball has empty lib/ submodules: no frozen manifest, no btree/ssl.
unix: $(UNIX_MP)
$(UNIX_MP): | $(MPY_DIR)/mpy-cross/build/mpy-cross
	@echo "setup: building the MicroPython Unix port"
	@$(MAKE) -s -C $(MPY_DIR)/ports/unix -j$(JOBS) BUILD=$(BUILD)/unix FROZEN_MANIFEST= \
		MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 MICROPY_SSL_AXTLS=0 MICROPY_SSL_MBEDTLS=0 \
		>$(BUILD)/unix.log 2>&1 \
		|| { tail -20 $(BUILD)/unix.log; echo "setup: Unix port build failed, log: $(BUILD)/unix.log" >&2; exit 1; }

-include boards/qemu.mk
-include host_tools/data.mk
-include host_tools/bench.mk
-include host_tools/serial.mk
-include host_tools/typecheck.mk
-include host_tools/package.mk
-include host_tools/soak.mk
-include host_tools/bench_extra.mk

setup: venv unix firmware

# ---- the native module, one .mpy per architecture ---------------------------

dist: $(NATMODS)
dist/%_6.3/_qtrain.mpy: $(NATMOD_SRC) $(VENV)/.stamp | $(MPY_DIR)/mpy-cross/build/mpy-cross
	@$(MAKE) -s -C natmod ARCH=$* MOD=_qtrain MPY_DIR=$(MPY_DIR) OUT=$(CURDIR)/dist/$*_6.3 install
dist/%_6.3/_qtrain_float.mpy: $(NATMOD_SRC) $(VENV)/.stamp | $(MPY_DIR)/mpy-cross/build/mpy-cross
	@$(MAKE) -s -C natmod ARCH=$* MOD=_qtrain_float MPY_DIR=$(MPY_DIR) OUT=$(CURDIR)/dist/$*_6.3 install

# ---- the main job ------------------------------------------------------------

# Train the paper's ConvVAE on the shipped MNIST subset on the Unix port, then
# heads on 10 and 100 labels per class; accuracy + PNGs in out/demo/.
DEMO_ARGS ?=
demo: venv unix dist
	$(PY) -m qtrain_host demo $(DEMO_ARGS)

# Install onto a real board: make deploy BOARD=pico PORT=/dev/ttyACM0 [FLOAT=1]
# (FLOAT=1 also installs _qtrain_float.mpy, for float32/mixed models)
deploy: venv dist
	$(PY) -m qtrain_host deploy --board $(if $(filter command line,$(origin BOARD)),$(BOARD),pico) $(if $(PORT),--port $(PORT)) $(if $(FLOAT),--float)

# ---- tests -------------------------------------------------------------------

# QTRAIN_REQUIRE_TARGETS makes a missing target a failure, not a skip.
test: setup dist
	QTRAIN_REQUIRE_TARGETS="unix qemu-m0 qemu-m4" $(PY) -m pytest -q tests $(PYTEST_ARGS)

test-quick: dist unix
	$(PY) -m pytest -q -x tests -k unix $(PYTEST_ARGS)

clean:
	rm -rf $(BUILD)/natmod $(BUILD)/firmware dist out

distclean:
	rm -rf build dist out

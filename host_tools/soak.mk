# Reliability soak (issue 6; included by the top-level Makefile).  Each
# target prints its figure; docs/RELIABILITY.md records them.  The quick
# versions run in `make test` (tests/test_soak*.py).
#
#   make soak              everything below, in order
#   make soak-api          hypothesis-driven: SOAK_API_PER_ENTRY (100 000) calls to every _qtrain entry point (Unix port)
#   make soak-fuzz         libFuzzer + ASan/UBSan on the C kernels (installs clang), SOAK_FUZZ_SECONDS
#   make soak-sanitize     every operator under ASan/UBSan vs the golden model, SOAK_SANITIZE_CASES per group
#   make soak-power        200 SIGKILLs of training on the Unix port
#   make soak-power-qemu   200 power losses of training on qemu-m4 (RAM disk kept)
#   make soak-link         10 lost `mpremote mount` links mid-training on qemu-m4, each rerun
#   make soak-long         one MNIST epoch (60 000 steps) of the ConvVAE in uint8
#
# SOAK_DATA: MNIST IDX directory for soak-long (optional; without it the
# shipped subset is repeated to 60 000 steps).

SOAK_DATA ?= ../shared/data/mnist
SOAK_API_PER_ENTRY ?= 100000
SOAK_KILLS ?= 200
SOAK_QEMU_KILLS ?= 200
SOAK_LINK_CUTS ?= 10
SOAK_STEPS ?= 60000
SOAK_FUZZ_SECONDS ?= 600
SOAK_SANITIZE_CASES ?= 3000
SOAK_PY = nice $(PY) -m

.PHONY: soak soak-api soak-fuzz soak-sanitize soak-power soak-power-qemu soak-link soak-long

soak: soak-api soak-fuzz soak-sanitize soak-power soak-power-qemu soak-link soak-long

soak-api: venv unix dist
	$(SOAK_PY) qtrain_host.soak_api --per-entry $(SOAK_API_PER_ENTRY)

# clang and its sanitizer/libFuzzer runtimes, only for this target (the same
# apt mechanism as `make deps`).
soak-fuzz: venv
	@bash host_tools/bootstrap/install_deps.sh clang libclang-rt-dev
	$(SOAK_PY) qtrain_host.soak_fuzz --seconds $(SOAK_FUZZ_SECONDS)

# gcc's ASan/UBSan runtimes (libasan), as the quick test uses them.
soak-sanitize: venv
	$(SOAK_PY) qtrain_host.soak_sanitize --cases $(SOAK_SANITIZE_CASES)

soak-power: venv unix dist
	$(SOAK_PY) qtrain_host.soak_power --kills $(SOAK_KILLS)

soak-power-qemu: venv firmware dist
	$(SOAK_PY) qtrain_host.soak_power --board qemu-m4 --kills $(SOAK_QEMU_KILLS)

soak-link: venv firmware dist
	$(SOAK_PY) qtrain_host.soak_link --cuts $(SOAK_LINK_CUTS)

soak-long: venv unix dist
	$(SOAK_PY) qtrain_host.soak_long --data $(SOAK_DATA) --steps $(SOAK_STEPS)

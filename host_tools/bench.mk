# Benchmarks (included by the top-level Makefile):
#   make bench         instruction counts (QEMU -icount) and heap of qtrain on
#                      qemu-m0 and qemu-m4; prints the tables and rewrites the
#                      generated block of docs/BENCHMARKS.md
#   make bench-quick   one small layer on qemu-m4 (a smoke test, seconds)
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--boards qemu-m4 --modes uint8".

BENCH_ARGS ?=

.PHONY: bench bench-quick bench-memory

bench: venv unix firmware dist
	$(PY) -m qtrain_host.bench --md docs/BENCHMARKS.md $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-extra  # bench_extra.mk, after the step figures it reads

bench-quick: venv firmware dist
	$(PY) -m qtrain_host.bench --quick

# Heap of training the paper's ConvVAE (the VAE paper's Table I): memory block
bench-memory: venv unix firmware dist
	$(PY) -m qtrain_host.bench_memory --md docs/BENCHMARKS.md

# Benchmarks of issue 5 next to bench.mk's (included by the top Makefile);
# each writes its own generated block of docs/BENCHMARKS.md:
#   make bench-accuracy      the VAE paper's accuracy table on full MNIST
#                            (MNIST_DIR, default ../shared/data/mnist; says so and
#                            does nothing else when it is absent), ACC_EPOCHS epochs,
#                            seeds ACC_SEEDS, ACC_PARALLEL runs at a time (the table in
#                            docs/BENCHMARKS.md: 2 epochs, seeds 1,2,3, 2 at a time);
#                            it keeps each VAE after every epoch in ACC_VAE (~65 KB
#                            uint8, ~230 KB float32 each) so head options can be
#                            rerun on them without training the VAEs again
#   make bench-cnn           the FQT paper's 4-layer CNN: accuracy on the shipped
#                            subset (CNN_ARGS="--data DIR" for full MNIST: its lr
#                            schedule is tuned for the subset, see BENCHMARKS.md)
#                            and instructions per sample on qemu-m0 / qemu-m4
#   make bench-alternatives  the same uint8 step with _qtrain, in pure MicroPython
#                            and with viper, side by side on the Unix port
#   make bench-stream        samples/s of mpremote mount and the framed serial
#                            protocol on qemu-m0/m4, and the epoch times they imply
# `make bench` runs these as well, after bench.mk's own recipe (bench-extra is
# the last line of that recipe, not a prerequisite of bench: bench-stream turns
# the step figures bench.py has just written into epoch times).

MNIST_DIR ?= ../shared/data/mnist
ACC_EPOCHS ?= 2
ACC_SEEDS ?= 1,2,3
ACC_PARALLEL ?= 2
ACC_VAE ?= out/bench-accuracy/vae
CNN_EPOCHS ?= 4
CNN_ARGS ?=
BENCH_MD ?= docs/BENCHMARKS.md

.PHONY: bench-extra bench-accuracy bench-cnn bench-alternatives bench-stream

bench-extra: bench-accuracy bench-cnn bench-alternatives bench-stream

bench-accuracy: venv unix dist
	$(PY) -m qtrain_host.bench_accuracy --data $(MNIST_DIR) --epochs $(ACC_EPOCHS) --seeds $(ACC_SEEDS) \
		--parallel $(ACC_PARALLEL) --save-vae $(ACC_VAE) --md $(BENCH_MD)

bench-cnn: venv unix firmware dist
	$(PY) -m qtrain_host.bench_cnn --epochs $(CNN_EPOCHS) $(CNN_ARGS) --md $(BENCH_MD)

bench-alternatives: venv unix dist
	$(PY) -m qtrain_host.bench_alternatives --md $(BENCH_MD)

bench-stream: venv firmware dist
	$(PY) -m qtrain_host.bench_stream --md $(BENCH_MD)

# Framed serial streaming (docs/SERIAL_PROTOCOL.md).  Include from the top
# Makefile (`-include host_tools/serial.mk`); uses its PY, VENV and dist rules.
#
#   make serial-run BOARD=qemu-m4 SCRIPT=f.py DATA=out/data/train.qtds [FAULTS=flip=0.05,drop=0.05]
#        run SCRIPT on BOARD (qemu-m0, qemu-m4, unix, or a serial device such
#        as /dev/ttyACM0) and serve DATA to its qtrain.serial_stream.SerialStream
#   make serial-bench [BOARD=qemu-m4] [DATA=out/data/train.qtds] [N=300] [WINDOW=8]
#        samples/s through the framed protocol on BOARD

SERIAL_PY ?= $(or $(PY),build/venv/bin/python)
DATA ?= out/data/train.qtds
N ?= 300
WINDOW ?= 8

.PHONY: serial-run serial-bench

serial-run:
	@test -n "$(SCRIPT)" || { echo "usage: make serial-run BOARD=qemu-m4 SCRIPT=file.py DATA=file.qtds [FAULTS=...]" >&2; exit 2; }
	PYTHONPATH=host_tools $(SERIAL_PY) -m qtrain_host.serial_stream run $(or $(BOARD),qemu-m4) $(SCRIPT) \
		--data $(DATA) $(if $(FAULTS),--faults $(FAULTS))

serial-bench:
	PYTHONPATH=host_tools $(SERIAL_PY) -m qtrain_host.serial_stream bench $(or $(BOARD),qemu-m4) \
		--data $(DATA) -n $(N) --window $(WINDOW)

# Emulated-board firmware (included by the top-level Makefile).
#
# MicroPython's ports/qemu is never edited in place (MPY_DIR may be a user's
# checkout).  We build a shadow tree:
#   build/firmware/src/{py,extmod,shared,lib,drivers,tools,mpy-cross} -> MPY_DIR/...
#   build/firmware/src/ports/qemu   a copy of MPY_DIR/ports/qemu with
#                                   boards/qemu-common/patches/*.patch applied
#                                   and boards/qemu-common/qtrain_hal.c added
# and build each board with BOARD_DIR=boards/<board> (mpconfigboard.mk) and the
# heap size from boards/<board>/board.json in build/firmware/<board>/obj/, then
# replace build/firmware/<board>/firmware.elf atomically (tests may be running).
# The version tag is taken from MPY_DIR's own git (if it is a checkout), never
# from the repository the shadow tree happens to sit in.
#
#   make firmware                      build/firmware/{qemu-m0,qemu-m3,qemu-m4}/firmware.elf
#   make run-qemu BOARD=qemu-m4 SCRIPT=f.py [MOUNT=dir]
#        start the emulator with its UART on a pty, then
#        `mpremote connect <pty> mount <dir> run <script>`, then stop it.
#        MOUNT defaults to dist/<arch>_6.3 (so `import _qtrain` and
#        `import _qtrain_float` work).
#   make firmware HEAP=194560 QEMU_BOARDS=qemu-m0, make run-qemu HEAP=194560 ...
#        the same with another heap size (e.g. a real board's heap instead
#        of the 160 KB planning budget of board.json), built in a tree of its
#        own, build/firmware-heap<HEAP>/; run-qemu passes it to the host
#        tools as QTRAIN_FIRMWARE_DIR.
#   make firmware-real-heaps           qemu-m0 and qemu-m4 also at the heap of the
#        real board each stands in for (heap_real_bytes_approx of boards/pico,
#        boards/nano33ble): build/firmware-heap<N>/.  `make firmware` builds
#        them too (tests/test_board_fit.py trains the ConvVAE there).

FW_DIR := $(BUILD)/firmware$(if $(HEAP),-heap$(HEAP))
FW_SRC := $(FW_DIR)/src
FW_PORT := $(FW_SRC)/ports/qemu
FW_LINKS := py extmod shared lib drivers tools mpy-cross
QEMU_PATCHES := $(sort $(wildcard boards/qemu-common/patches/*.patch))
FIRMWARES := $(foreach b,$(QEMU_BOARDS),$(FW_DIR)/$(b)/firmware.elf)
MPY_DIR_ABS = $(abspath $(MPY_DIR))
board_json = python3 -c "import json,sys; print(json.load(open('boards/$(1)/board.json'))['$(2)'])"

.PHONY: firmware firmware-real-heaps run-qemu

firmware: $(FIRMWARES) $(if $(HEAP),,firmware-real-heaps)

REAL_HEAP_BOARDS := qemu-m0 qemu-m4
real_heap = PYTHONPATH=host_tools python3 -c "from qtrain_host import paths; print(paths.real_heap_bytes('$(1)'))"
firmware-real-heaps:
	@for b in $(REAL_HEAP_BOARDS); do \
		$(MAKE) -s firmware QEMU_BOARDS=$$b HEAP=$$($(call real_heap,$$b)) || exit 1; done

# The patched port tree.  Rebuilt (and every board rebuilt) when a patch changes.
$(FW_DIR)/.tree-stamp: $(QEMU_PATCHES) boards/qemu-common/qtrain_hal.c | $(BUILD)/.apt-stamp $(MPY_DIR)/py/dynruntime.mk
	@echo "setup: patching a copy of ports/qemu into $(FW_SRC)"
	@rm -rf $(FW_SRC) && mkdir -p $(FW_SRC)/ports
	@for d in $(FW_LINKS); do ln -s $(MPY_DIR_ABS)/$$d $(FW_SRC)/$$d; done
	@cp -r $(MPY_DIR_ABS)/ports/qemu $(FW_PORT) && rm -rf $(FW_PORT)/build-*
	@for p in $(QEMU_PATCHES); do \
		patch -s -p1 -d $(FW_PORT) < $$p || { \
			echo "setup: patch $$p does not apply to $(MPY_DIR_ABS)/ports/qemu." >&2; \
			echo "  Fix: use MicroPython $(MPY_VERSION) (MPY_DIR=... or unset it), or refresh the patch." >&2; \
			exit 1; }; \
	done
	@cp boards/qemu-common/qtrain_hal.c $(FW_PORT)/
	@touch $@

$(FW_DIR)/%/firmware.elf: $(FW_DIR)/.tree-stamp boards/%/mpconfigboard.mk boards/%/board.json
	@echo "setup: building firmware $* (log: $(FW_DIR)/$*.log)"
	@mkdir -p $(FW_DIR)/$*
	@heap=$(if $(HEAP),$(HEAP),$$($(call board_json,$*,heap_bytes))) && \
	ramdisk=$$(python3 -c "import json; q = json.load(open('boards/$*/board.json'))['qemu']; \
		print('-DQTRAIN_RAMDISK_ADDR=%s -DQTRAIN_RAMDISK_BLOCKS=%d' % (q['ramfs_addr'], q['ramfs_bytes'] // 4096))") && \
	if test -e $(MPY_DIR_ABS)/.git; then \
		export MICROPY_GIT_TAG=$$(git -C $(MPY_DIR_ABS) describe --tags --dirty --always --match 'v[1-9].*'); \
		export MICROPY_GIT_HASH=$$(git -C $(MPY_DIR_ABS) rev-parse --short HEAD); \
	else export MICROPY_GIT_TAG=v$(MPY_VERSION); fi && \
	$(MAKE) -C $(FW_PORT) BOARD=$* BOARD_DIR=$(CURDIR)/boards/$* BUILD=$(FW_DIR)/$*/obj \
		FROZEN_MANIFEST= MICROPY_HEAP_SIZE=$$heap CFLAGS_EXTRA="$$ramdisk" -j$(JOBS) >$(FW_DIR)/$*.log 2>&1 \
		|| { tail -25 $(FW_DIR)/$*.log; \
		     echo "setup: firmware $* failed, full log: $(FW_DIR)/$*.log" >&2; \
		     echo "  Fix: check gcc-arm-none-eabi and libnewlib-arm-none-eabi are installed (make deps)," >&2; \
		     echo "  then 'rm -rf $(FW_DIR)' and rerun make firmware." >&2; exit 1; }
	@cp $(FW_DIR)/$*/obj/firmware.elf $@.tmp && mv -f $@.tmp $@
	@arm-none-eabi-size $@ | tail -1 | awk '{printf "setup: %s text=%d data=%d bss=%d\n", "$*", $$1, $$2, $$3}'

# ---- the real user path on an emulated board --------------------------------

# BOARD is shared with other targets (deploy): no global default here.
QEMU_RUN_BOARD = $(or $(BOARD),qemu-m4)
run-qemu: $(FW_DIR)/$(QEMU_RUN_BOARD)/firmware.elf $(VENV)/.stamp
	@test -n "$(SCRIPT)" || { echo "usage: make run-qemu BOARD=qemu-m4 SCRIPT=file.py [MOUNT=dir]" >&2; exit 2; }
	@arch=$$($(call board_json,$(QEMU_RUN_BOARD),arch)) && $(MAKE) -s dist/$${arch}_6.3/_qtrain.mpy dist/$${arch}_6.3/_qtrain_float.mpy
	$(if $(HEAP),QTRAIN_FIRMWARE_DIR=$(abspath $(FW_DIR))) $(PY) -m qtrain_host.qemu mpremote $(QEMU_RUN_BOARD) $(SCRIPT) $(if $(MOUNT),--mount $(MOUNT))

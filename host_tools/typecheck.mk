# Type checking of python/ against the MicroPython stubs (included by the
# Makefile).  `make typecheck` runs what tests/test_typecheck.py runs; the
# settings are in pyproject.toml [tool.mypy].

MPY_STUBS := $(VENV)/mpy-stubs

.PHONY: mpy-stubs typecheck
mpy-stubs: $(MPY_STUBS)/.stamp
$(MPY_STUBS)/.stamp: host_tools/requirements-mpy-stubs.txt | $(VENV)/.stamp
	@echo "setup: MicroPython stubs into $(MPY_STUBS)"
	@rm -rf $(MPY_STUBS)
	@$(PY) -m pip install -q --disable-pip-version-check --target $(MPY_STUBS) -r $< \
		|| { echo "setup: installing the MicroPython stubs failed (see above). Fix: check the network / pip config, then rerun make" >&2; exit 1; }
	@touch $@

setup: mpy-stubs

typecheck: mpy-stubs
	$(PY) -m mypy

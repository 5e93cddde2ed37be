# mip packages, one per architecture, built by `make dist` next to the
# natmods (host_tools/qtrain_host/mip_package.py; install: README "On a board").
# Included by the Makefile.

MIP_PACKAGES := $(foreach a,$(ARCHS),dist/mip/$(a)_6.3/package.json)

dist: $(MIP_PACKAGES)
dist/mip/%_6.3/package.json: dist/%_6.3/_qtrain.mpy $(wildcard python/qtrain/*.py) host_tools/qtrain_host/mip_package.py
	@$(PY) -m qtrain_host.mip_package --arch $*

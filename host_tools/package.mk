# mip packages, one per architecture, built by `make dist` next to the
# natmods (host_tools/qtrain_host/mip_package.py; install: README "On a board").
# Included by the Makefile.

MIP_PACKAGES := $(foreach a,$(ARCHS),dist/mip/$(a)_6.3/package.json)

dist: $(MIP_PACKAGES)
# Every package on every natmod: a package is complete only once all of its
# arch's natmods are built (about a second for all four).
dist/mip/%_6.3/package.json: $(NATMODS) $(wildcard python/qtrain/*.py) host_tools/qtrain_host/mip_package.py
	@$(PY) -m qtrain_host.mip_package --arch $*

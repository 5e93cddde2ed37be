#!/usr/bin/env bash
# Fetch the pinned MicroPython source into DEST (default build/micropython).
#
# Order of sources (DESIGN.md, "Toolchain"):
#   1. MPY_DIR given by the user: used as it is, nothing is fetched.
#   2. Debian's source package (sid), through a private apt config that reuses
#      the mirror this machine's own apt sources already use; checksum-verified.
#   3. A git clone of the release tag, where the network allows.
# The result is a plain directory DEST with py/, ports/, tools/ ...
set -euo pipefail

VERSION=1.26.1
ORIG_TARBALL="micropython_${VERSION}+ds.orig.tar.xz"
ORIG_SHA256=f5ad2ec89d3e921f753d448955af98b6005655f84ba26087dde6ba0e8d062f34
DEST=${1:-build/micropython}
WORK=$(dirname "$DEST")/micropython-download

fail() { echo "fetch_micropython: $*" >&2; exit 1; }

if [ -f "$DEST/py/dynruntime.mk" ]; then
    echo "fetch_micropython: $DEST already holds MicroPython, nothing to do"
    exit 0
fi
mkdir -p "$WORK"

mirror_uri() {
    # First http(s) URI of a Debian main archive in the system's own apt config
    # (deb822 .sources files or one-line .list files). Never hard-coded.
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f"
    done | head -n1
    [ -f /etc/apt/sources.list ] && awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list | head -n1
}

from_debian() {
    command -v apt-get >/dev/null || return 1
    local uri
    uri=$(mirror_uri | head -n1)
    [ -n "$uri" ] || { echo "fetch_micropython: no Debian mirror found in /etc/apt" >&2; return 1; }
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    local opts="[trusted=yes]"
    [ -f "$keyring" ] && opts="[signed-by=$keyring]"
    mkdir -p "$WORK/lists/partial" "$WORK/src"
    echo "deb-src $opts $uri sid main" > "$WORK/sources.list"
    local apt=(apt-get -q -o Dir::Etc::SourceList="$WORK/sources.list"
               -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$WORK/lists"
               -o APT::Sandbox::User=root)
    if [ ! -f "$WORK/src/$ORIG_TARBALL" ]; then
        "${apt[@]}" update >"$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log" >&2; return 1; }
        (cd "$WORK/src" && "${apt[@]}" source --download-only "micropython=${VERSION}+ds-1" >"$WORK/apt-source.log" 2>&1) \
          || (cd "$WORK/src" && "${apt[@]}" source --download-only micropython >>"$WORK/apt-source.log" 2>&1) \
          || { cat "$WORK/apt-source.log" >&2; return 1; }
    fi
    [ -f "$WORK/src/$ORIG_TARBALL" ] || { echo "fetch_micropython: Debian has no $ORIG_TARBALL (sid moved on?)" >&2; return 1; }
    echo "$ORIG_SHA256  $WORK/src/$ORIG_TARBALL" | sha256sum -c --quiet - \
        || { echo "fetch_micropython: checksum mismatch for $ORIG_TARBALL" >&2; rm -f "$WORK/src/$ORIG_TARBALL"; return 1; }
    rm -rf "$WORK/unpack" && mkdir -p "$WORK/unpack"
    tar -xJf "$WORK/src/$ORIG_TARBALL" -C "$WORK/unpack"
    rm -rf "$DEST" && mv "$WORK/unpack"/micropython-* "$DEST"
}

from_git() {
    command -v git >/dev/null || return 1
    rm -rf "$DEST"
    git clone -q --depth 1 --branch "v$VERSION" https://github.com/micropython/micropython "$DEST"
}

if from_debian; then
    echo "fetch_micropython: MicroPython $VERSION from Debian's source package (sha256 verified)"
elif from_git; then
    echo "fetch_micropython: MicroPython $VERSION cloned with git"
else
    fail "could not get MicroPython $VERSION. Fix: pass MPY_DIR=<a MicroPython $VERSION checkout>, or make sure apt-get reaches a Debian mirror."
fi

#!/usr/bin/env bash
# Builds, once, a QEMU that starts IGVM files (-object igvm-cfg), for the end-to-end tests of the
# IGVM launch form (tests/e2e/). Debian's QEMU packages are built without IGVM, as Debian has no
# libigvm, and QEMU 10.0 has no IGVM support at all (it came with QEMU 10.1); so this builds
# Debian's QEMU 10.2.2 source against the C API of the igvm crate from crates.io.
#
#   scripts/setup-qemu-igvm.sh          build it if it is missing or stale, as root
#   scripts/setup-qemu-igvm.sh --check  exit 0 if it is ready, 1 if not (no changes)
#
# What it uses, all from Debian, crates.io and PyPI:
# - Debian packages (installed when missing): ninja-build, pkg-config, libglib2.0-dev and
#   zlib1g-dev (QEMU's two required libraries), cbindgen (the igvm C headers), python3-venv
#   (QEMU's configure makes a Python venv), device-tree-compiler (QEMU's build compiles a few
#   device trees with it, whatever the target list; without it, it looks for prebuilt ones that
#   Debian's repack leaves out), xz-utils, curl;
# - libigvm: the igvm crate, feature igvm-c, built by cargo as a static library through a
#   one-line wrapper crate; its headers made by cbindgen from the crate's own sources, with the
#   names QEMU's backends/igvm.c includes; a pkg-config file written here. (The crate's upstream
#   builds the same with cargo-c from files that are not on crates.io.)
# - QEMU: Debian's repacked upstream source (qemu_10.2.2+ds.orig.tar.xz, checked by SHA-256),
#   configured for x86_64 only, KVM and TCG, IGVM, no optional features; the Meson and pycotap
#   wheels that Debian's repack leaves out are taken from PyPI (the versions QEMU's
#   pythondeps.toml names).
#
# The builds run under nice -n 19 with 2 jobs. Build scratch goes to $ROOT/build and is removed
# when the build succeeded (under 1 GB); what stays is $ROOT/bin/qemu-system-x86_64 (29 MB; no
# firmware: guests that load no IGVM file need -L with Debian's /usr/share/seabios) and the test
# file $ROOT/share/native-hlt.igvm. Output goes to a log file; one line is printed.
#
# 10.2.2 is the QEMU with IGVM support Debian's pool serves (from sid, which keeps a source only
# while it has it): if it goes, the download's failure says which variables to change.
#
# Location: $SEV_QEMU_IGVM_ROOT, default /var/lib/virt-qemu-sev-validate/qemu-igvm
# (tests/e2e/ reads the same variable). Mirror: $DEBIAN_MIRROR.
set -euo pipefail

ROOT=${SEV_QEMU_IGVM_ROOT:-/var/lib/virt-qemu-sev-validate/qemu-igvm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
LOG=${ROOT}.log
QEMU_VERSION=10.2.2
QEMU_TARBALL=qemu_${QEMU_VERSION}+ds.orig.tar.xz
QEMU_SHA256=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb
IGVM_VERSION=0.5.0
MESON_VERSION=1.9.0
PYCOTAP_VERSION=1.3.1
# Debian's interpreter, which python3-venv goes with (not whatever python3 comes first in PATH).
PYTHON=/usr/bin/python3
PACKAGES=(ninja-build pkg-config libglib2.0-dev zlib1g-dev cbindgen python3-venv device-tree-compiler
    xz-utils curl)
# What the build must be; a change here rebuilds it (the stamp records this line).
WANT="v1 qemu $QEMU_VERSION igvm $IGVM_VERSION meson $MESON_VERSION pycotap $PYCOTAP_VERSION"
STAMP=$ROOT/.sev-e2e-ready
QEMU=$ROOT/bin/qemu-system-x86_64
JOBS=${SEV_QEMU_IGVM_JOBS:-2}

ready() {
    [[ -f $STAMP && $(head -n1 "$STAMP") == "$WANT" && -x $QEMU ]]
}

if [[ ${1:-} == --check ]]; then
    ready
    exit
fi

if ready; then
    echo "setup-qemu-igvm.sh: ready: $(sed -n 2p "$STAMP") in $ROOT"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-qemu-igvm.sh: need root to install packages and build into $ROOT" >&2
    exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup-qemu-igvm.sh: cargo missing (the igvm crate is built with it)" >&2
    exit 1
fi

t0=$(date +%s)
mkdir -p "$(dirname "$ROOT")"
: >"$LOG"
fail() {
    echo "setup-qemu-igvm.sh: $1 failed after $(($(date +%s) - t0)) s; last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    exit 1
}
step() { echo "== $(date +%T) $*" >>"$LOG"; }

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    step "apt-get install ${missing[*]}"
    # Waits for another apt run to end rather than failing on its lock.
    apt=(apt-get -o DPkg::Lock::Timeout=300)
    { "${apt[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y \
        --no-install-recommends "${missing[@]}"; } >>"$LOG" 2>&1 ||
        fail "apt-get install ${missing[*]}"
fi

# A stale or interrupted build is redone from scratch: nothing in $ROOT is kept.
rm -rf --one-file-system "$ROOT"
B=$ROOT/build
mkdir -p "$B"
NICE=(nice -n 19)

# The source directory cargo unpacked a dependency into, from `cargo metadata` on stdin.
crate_dir() {
    "$PYTHON" -c 'import json, os, sys
m = json.load(sys.stdin)
print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"] == sys.argv[1]))' "$1"
}

build_libigvm() {
    local shim=$B/igvm-shim prefix=$B/igvm
    mkdir -p "$shim/src" "$prefix/include/igvm" "$prefix/lib/pkgconfig"
    # A static library holds the code of every crate it depends on, so this wrapper's archive
    # carries the igvm crate's extern "C" functions.
    cat >"$shim/Cargo.toml" <<EOF
[package]
name = "igvm_shim"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
crate-type = ["staticlib"]
path = "src/lib.rs"

[dependencies]
igvm = { version = "=$IGVM_VERSION", features = ["igvm-c"] }
igvm_defs = "=$IGVM_VERSION"

[profile.release]
panic = "abort"

[workspace]
EOF
    echo 'pub use igvm;' >"$shim/src/lib.rs"
    write_native_igvm_maker "$shim/src/bin"
    step "cargo build of the igvm crate $IGVM_VERSION (feature igvm-c) as a static library"
    (cd "$shim" && CARGO_TARGET_DIR=$B/igvm-target "${NICE[@]}" cargo build --release \
        -j "$JOBS") >>"$LOG" 2>&1 || return 1
    cp "$B/igvm-target/release/libigvm_shim.a" "$prefix/lib/libigvm.a"
    mkdir -p "$ROOT/share"
    "$B/igvm-target/release/make-native-igvm" "$ROOT/share/native-hlt.igvm" >>"$LOG" 2>&1 ||
        return 1
    # The system libraries the Rust standard library needs when linked statically.
    local native
    native=$(cd "$shim" && CARGO_TARGET_DIR=$B/igvm-target cargo rustc --release -q \
        -- --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | tail -n1)
    local meta igvm_src defs_src
    meta=$(cd "$shim" && cargo metadata --format-version 1 --locked 2>>"$LOG") || return 1
    igvm_src=$(crate_dir igvm <<<"$meta")
    defs_src=$(crate_dir igvm_defs <<<"$meta")
    write_cbindgen_configs "$B"
    step "cbindgen: igvm_defs.h from $defs_src, igvm.h from $igvm_src"
    cbindgen -q -c "$B/cbindgen_igvm_defs.toml" "$defs_src" \
        -o "$prefix/include/igvm/igvm_defs.h" >>"$LOG" 2>&1 || return 1
    cbindgen -q -c "$B/cbindgen_igvm.toml" "$igvm_src" \
        -o "$prefix/include/igvm/igvm.h" >>"$LOG" 2>&1 || return 1
    # Names cbindgen's configuration cannot rename: QEMU expects them prefixed with IGVM_.
    sed -i -e 's/\bINVALID = 0/IGVM_INVALID = 0/' \
        -e 's/\bRESERVED_DO_NOT_USE = /IGVM_RESERVED_DO_NOT_USE = /' \
        -e 's/\bRequiredMemoryFlags\b/IgvmRequiredMemoryFlags/g' \
        -e 's/\bMemoryMapEntryFlags\b/IgvmMemoryMapEntryFlags/g' \
        "$prefix/include/igvm/igvm_defs.h"
    sed -i -e 's/^\( *\)HEADER_SECTION_/\1IGVM_HEADER_SECTION_/' "$prefix/include/igvm/igvm.h"
    cat >"$prefix/lib/pkgconfig/igvm.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: igvm
Description: C API of the igvm crate $IGVM_VERSION (static)
Version: $IGVM_VERSION
Libs: -L\${libdir} -ligvm $native
Cflags: -I\${includedir}
EOF
}

# The test file QEMU starts without SEV ($ROOT/share/native-hlt.igvm), written by the igvm
# crate's own serializer: one platform header, NATIVE (no isolation, which QEMU loads when no
# confidential-guest-support object is given), and one 4 KiB page at 0xFFFFF000 whose x86 reset
# vector (0xFFFFFFF0) halts.
write_native_igvm_maker() {
    mkdir -p "$1"
    cat >"$1/make-native-igvm.rs" <<'RUST'
use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmPlatformHeader, IgvmRevision};
use igvm_defs::{IgvmPageDataFlags, IgvmPageDataType, IgvmPlatformType};
use igvm_defs::{IGVM_NATIVE_PLATFORM_VERSION, IGVM_VHS_SUPPORTED_PLATFORM};

fn main() {
    let out = std::env::args().nth(1).expect("usage: make-native-igvm OUT");
    let mut page = vec![0u8; 4096];
    page[0xff0..0xff3].copy_from_slice(&[0xf4, 0xeb, 0xfd]); // hlt; jmp back to the hlt
    let platform = IgvmPlatformHeader::SupportedPlatform(IGVM_VHS_SUPPORTED_PLATFORM {
        compatibility_mask: 1,
        highest_vtl: 0,
        platform_type: IgvmPlatformType::NATIVE,
        platform_version: IGVM_NATIVE_PLATFORM_VERSION,
        shared_gpa_boundary: 0,
    });
    let directive = IgvmDirectiveHeader::PageData {
        gpa: 0xFFFF_F000,
        compatibility_mask: 1,
        flags: IgvmPageDataFlags::new(),
        data_type: IgvmPageDataType::NORMAL,
        data: page,
    };
    let file = IgvmFile::new(IgvmRevision::V1, vec![platform], vec![], vec![directive])
        .expect("a valid IGVM file");
    let mut bytes = Vec::new();
    file.serialize(&mut bytes).expect("serialized");
    std::fs::write(&out, bytes).expect("written");
}
RUST
}

# cbindgen configurations for the two headers. What they export and rename is what QEMU's
# backends/igvm.c and target/i386/igvm.c use; the bit-field structs are written out here as
# cbindgen renders the crate's bitfield types as plain integers.
write_cbindgen_configs() {
    cat >"$1/cbindgen_igvm.toml" <<'EOF'
language = "C"
include_guard = "IGVM_H"
includes = ["igvm_defs.h"]
autogen_warning = "/* Generated by cbindgen from the igvm crate (scripts/setup-qemu-igvm.sh). */"

[export]
include = ["IgvmResult"]

[export.rename]
"X64_PAGE_SIZE" = "IGVM_X64_PAGE_SIZE"
"X64_LARGE_PAGE_SIZE" = "IGVM_X64_LARGE_PAGE_SIZE"
"X64_1GB_PAGE_SIZE" = "IGVM_X64_1GB_PAGE_SIZE"
EOF
    cat >"$1/cbindgen_igvm_defs.toml" <<'EOF'
language = "C"
include_guard = "IGVM_DEFS_H"
autogen_warning = "/* Generated by cbindgen from the igvm_defs crate (scripts/setup-qemu-igvm.sh). */"
after_includes = """

typedef struct {
    uint32_t is_2mb_page : 1;
    uint32_t unmeasured : 1;
    uint32_t reserved : 30;
} IgvmPageDataFlags;

typedef struct {
    uint32_t vtl2_protectable : 1;
    uint32_t reserved : 31;
} RequiredMemoryFlags;

typedef struct {
    uint16_t is_shared : 1;
    uint16_t reserved : 15;
} MemoryMapEntryFlags;

typedef struct {
    uint32_t memory_is_shared : 1;
    uint32_t reserved : 31;
} IgvmEnvironmentInfo;

typedef uint64_t IGVM_U64_LE;
typedef uint32_t IGVM_U32_LE;
"""

[export]
include = ["IGVM_FIXED_HEADER", "IGVM_VHS_VARIABLE_HEADER", "IGVM_VHS_SUPPORTED_PLATFORM",
    "IGVM_VHS_GUEST_POLICY", "SnpPolicy", "TdxPolicy", "IGVM_VHS_RELOCATABLE_REGION",
    "IGVM_VHS_PAGE_TABLE_RELOCATION", "IGVM_VHS_PARAMETER_AREA", "IGVM_VHS_PAGE_DATA",
    "IGVM_VHS_PARAMETER_INSERT", "IGVM_VHS_PARAMETER", "IGVM_VHS_VP_CONTEXT",
    "IGVM_VHS_REQUIRED_MEMORY", "IGVM_VHS_MEMORY_RANGE", "IGVM_VHS_MMIO_RANGES",
    "IGVM_VHS_SNP_ID_BLOCK_SIGNATURE", "IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY",
    "IGVM_VHS_SNP_ID_BLOCK", "IGVM_VHS_VBS_MEASUREMENT", "IGVM_VHS_MEMORY_MAP_ENTRY",
    "IGVM_VHS_ERROR_RANGE"]
exclude = ["IgvmPageDataFlags", "RequiredMemoryFlags", "MemoryMapEntryFlags"]

[export.rename]
"MemoryMapEntryType" = "IgvmMemoryMapEntryType"
"SnpPolicy" = "IgvmSnpPolicy"
"TdxPolicy" = "IgvmTdxPolicy"
"PAGE_SIZE_4K" = "IGVM_PAGE_SIZE_4K"
"u64_le" = "IGVM_U64_LE"
"u32_le" = "IGVM_U32_LE"
EOF
}

build_qemu() {
    local src=$B/qemu-$QEMU_VERSION
    step "download $MIRROR/pool/main/q/qemu/$QEMU_TARBALL"
    if ! curl -fsS --retry 3 -o "$B/$QEMU_TARBALL" "$MIRROR/pool/main/q/qemu/$QEMU_TARBALL" \
        >>"$LOG" 2>&1; then
        # sid's pool keeps a source only while sid has it.
        echo "Debian's pool may have dropped $QEMU_TARBALL: set QEMU_VERSION and QEMU_SHA256" \
            "to a QEMU 10.1 or later source it has (apt-cache showsrc qemu, with deb-src lines)" \
            >>"$LOG"
        return 1
    fi
    echo "$QEMU_SHA256  $B/$QEMU_TARBALL" | sha256sum -c --quiet >>"$LOG" 2>&1 || return 1
    tar -C "$B" -xJf "$B/$QEMU_TARBALL" && rm -f "$B/$QEMU_TARBALL"
    # QEMU's configure installs Meson (and pycotap, for its test runner) into its own venv from
    # python/wheels, which Debian's repack empties; the wheels come from PyPI instead.
    step "Meson $MESON_VERSION and pycotap $PYCOTAP_VERSION wheels from PyPI"
    "$PYTHON" -m venv "$B/pip-venv" >>"$LOG" 2>&1 &&
        "$B/pip-venv/bin/pip" download -q --no-deps --only-binary=:all: \
            -d "$src/python/wheels" "meson==$MESON_VERSION" "pycotap==$PYCOTAP_VERSION" \
            >>"$LOG" 2>&1 || return 1
    # Debian's repack also leaves out the prebuilt firmware, which QEMU's build would unpack:
    # the IGVM file brings the guest's firmware, so none is needed.
    grep -q 'unpack_edk2_blobs = bzip2.found()' "$src/meson.build" || return 1
    sed -i 's/unpack_edk2_blobs = bzip2.found()/unpack_edk2_blobs = false/' "$src/meson.build"
    step "configure"
    mkdir -p "$src/build"
    (cd "$src/build" && PKG_CONFIG_PATH=$B/igvm/lib/pkgconfig ../configure \
        --python="$PYTHON" --prefix="$ROOT" --target-list=x86_64-softmmu --without-default-features \
        --enable-igvm --enable-kvm --enable-tcg --disable-docs --disable-werror \
        --disable-download --disable-install-blobs) >>"$LOG" 2>&1 || return 1
    step "ninja -j $JOBS"
    (cd "$src/build" && "${NICE[@]}" ninja -j "$JOBS" qemu-system-x86_64) >>"$LOG" 2>&1 ||
        return 1
    mkdir -p "$ROOT/bin"
    # Stripped: the debug information would make it 80 MB instead of 29.
    install -s -m 755 "$src/build/qemu-system-x86_64" "$QEMU"
}

build_libigvm || fail "the igvm library build"
build_qemu || fail "the QEMU build"
"$QEMU" -object help 2>>"$LOG" | grep -qw igvm-cfg || fail "the check that -object help lists igvm-cfg"
rm -rf --one-file-system "$B"

version=$("$QEMU" --version | head -n1)
printf '%s\n%s, igvm %s\n' "$WANT" "$version" "$IGVM_VERSION" >"$STAMP"
echo "setup-qemu-igvm.sh: built in $(($(date +%s) - t0)) s: $version with IGVM in $ROOT (log $LOG)"

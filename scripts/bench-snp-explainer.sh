#!/usr/bin/env bash
# How fast the SEV-SNP mismatch explainer is (snp-digest --measurement): a
# 4 MiB OVMF image with SEV-SNP metadata and a kernel hashes page (laid out as
# edk2's AmdSevX64 build), 8 EPYC-Milan vCPUs, a measured direct boot with a
# 12 MiB kernel, a 30 MiB initrd and a command line, and a reported
# MEASUREMENT that no variant gives (48 random bytes): the worst case, every
# variant is evaluated. Prints the explainer's own variant count and time, and
# the whole run's time (hashing 46 MiB of inputs, searching, exit 1).
# Target: at least 10,000 variants, whole process under 0.5 s.
#
# Then the same search through snp-validate: the simulated SNP firmware
# (tests/sim/snp_sp.py, needs python3-cryptography) signs a report holding
# that MEASUREMENT with a test chain, and snp-validate checks it (signature,
# chain, binding, policy) with the launch options after '--' and explains
# the mismatch: the whole run, exit 1.
#
# Environment: BENCH_RUNS=N runs (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-5}
cd "$ROOT"
cargo build --release --quiet
TOOL=$ROOT/target/release/virt-qemu-sev-validate
WORK=$(mktemp -d "${TMPDIR:-/tmp}/snp-bench-explainer.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

/usr/bin/python3 - "$WORK/OVMF.fd" <<'PY'
import os, struct, sys, uuid
size = 4 * 1024 * 1024
le = lambda s: uuid.UUID(s).bytes_le
fw = bytearray(os.urandom(size))
sections = [(0x800000, 0x9000, 1), (0x80A000, 0x3000, 1), (0x80D000, 0x1000, 2),
            (0x80E000, 0x1000, 3), (0x80F000, 0x1000, 4), (0x810000, 0x1000, 0x10),
            (0x811000, 0xF000, 1)]
meta = b"ASEV" + struct.pack("<III", 16 + 12 * len(sections), 1, len(sections))
meta += b"".join(struct.pack("<III", *s) for s in sections)
meta_offset = 0x554
fw[size - meta_offset:size - meta_offset + len(meta)] = meta
entries = [
    ("dc886566-984a-4798-a75e-5585a7bf67cc", struct.pack("<I", meta_offset)),
    ("00f771de-1a7e-4fcb-890e-68c77e2fb44e", struct.pack("<I", 0x80B004)),
    ("4c2eb361-7d9b-4cc3-8081-127c90d3d294", struct.pack("<II", 0x810000, 0xC00)),
    ("7255371f-3a3b-4b04-927b-1da6efa8d454", struct.pack("<II", 0x810C00, 0x400)),
]
table = b"".join(d + struct.pack("<H", len(d) + 18) + le(g) for g, d in entries)
table += struct.pack("<H", len(table) + 18) + le("96b582de-1fb2-45f7-baea-a366c55a082d")
fw[size - 32 - len(table):size - 32] = table
fw[size - 32:] = bytes(32)
open(sys.argv[1], "wb").write(fw)
PY
head -c 12M /dev/urandom >"$WORK/vmlinuz"
head -c 30M /dev/urandom >"$WORK/initrd"
M=$(head -c 48 /dev/urandom | od -An -tx1 -v | tr -d ' \n')

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$RUNS"); do
    start=$(date +%s.%N)
    rc=0
    out=$("$TOOL" snp-digest --ovmf "$WORK/OVMF.fd" --vcpus 8 --vcpu-type EPYC-Milan \
        --kernel "$WORK/vmlinuz" --initrd "$WORK/initrd" --append "console=ttyS0 root=/dev/vda1 ro" \
        --measurement "$M" 2>&1) || rc=$?
    end=$(date +%s.%N)
    [[ $rc == 1 ]] || { echo "expected exit 1 (mismatch), got $rc: $out" >&2; exit 1; }
    echo "explainer: $(grep -o '[0-9]* variants tried in [0-9.]* s' <<<"$out")"
    awk -v a="$start" -v b="$end" 'BEGIN { printf "whole run (hashing 46 MiB of inputs, explaining, exit 1): %.3f s\n", b - a }'
done

if ! /usr/bin/python3 -c 'import cryptography' 2>/dev/null; then
    echo "snp-validate: skipped (python3-cryptography is needed for the simulated SNP firmware)"
    exit 0
fi
SIM=(/usr/bin/python3 "$ROOT/tests/sim/snp_sp.py")
"${SIM[@]}" chain --product milan --out "$WORK/chain" --keys "$WORK/keys" >/dev/null
NONCE=$(head -c 64 /dev/urandom | od -An -tx1 -v | tr -d ' \n')
"${SIM[@]}" report --chain "$WORK/chain" --out "$WORK/report.bin" --measurement "$M" --report-data "$NONCE" >/dev/null
for _ in $(seq "$RUNS"); do
    start=$(date +%s.%N)
    rc=0
    out=$("$TOOL" snp-validate "$WORK/report.bin" --vcek "$WORK/chain/vcek.der" \
        --trust-anchors "$WORK/chain/ark.pem" --trust-anchors "$WORK/chain/ask.pem" \
        --report-data "$NONCE" --vmpl 0 \
        -- --ovmf "$WORK/OVMF.fd" --vcpus 8 --vcpu-type EPYC-Milan \
        --kernel "$WORK/vmlinuz" --initrd "$WORK/initrd" --append "console=ttyS0 root=/dev/vda1 ro" 2>&1) || rc=$?
    end=$(date +%s.%N)
    [[ $rc == 1 ]] || { echo "snp-validate: expected exit 1 (mismatch), got $rc: $out" >&2; exit 1; }
    echo "snp-validate explainer: $(grep -o '[0-9]* variants of the launch options tried in [0-9.]* s' <<<"$out")"
    awk -v a="$start" -v b="$end" 'BEGIN { printf "snp-validate whole run (validating, hashing 46 MiB, explaining, exit 1): %.3f s\n", b - a }'
done

#!/usr/bin/env bash
# How fast the mismatch explainer is: an SEV-ES launch with direct kernel
# boot whose reported measurement matches no variant (the worst case: every
# variant is evaluated), on a copy of Debian's OVMF.fd with a kernel hashes
# area. Prints the explainer's own count and time, and the whole run's time.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-5}
cd "$ROOT"
cargo build --release --quiet
TOOL=$ROOT/target/release/virt-qemu-sev-validate
SP="/usr/bin/python3 $ROOT/tests/sim/sev_sp.py"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sev-bench-explainer.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Debian's OVMF with its kernel hashes area entry (7255371f-...) set to 0x80FC00/0x400.
/usr/bin/python3 - "$WORK/fw.fd" <<'PY'
import sys, uuid, struct
d = bytearray(open("/usr/share/ovmf/OVMF.fd", "rb").read())
n = len(d); tl = int.from_bytes(d[n-50:n-48], "little"); pos = n - 50; start = n - 32 - tl
while pos > start:
    g = uuid.UUID(bytes_le=bytes(d[pos-16:pos])); l = int.from_bytes(d[pos-18:pos-16], "little")
    if str(g) == "7255371f-3a3b-4b04-927b-1da6efa8d454":
        d[pos-18-8:pos-18] = struct.pack("<II", 0x80FC00, 0x400)
    pos -= l
open(sys.argv[1], "wb").write(d)
PY
head -c 12M /dev/urandom > "$WORK/vmlinuz"
head -c 30M /dev/urandom > "$WORK/initrd"
head -c 16 /dev/urandom > "$WORK/tik"
head -c 16 /dev/urandom > "$WORK/tek"
head -c 16 /dev/urandom > "$WORK/other-tik"
# The host's firmware used another TIK: nothing the explainer tries can match.
M=$($SP measure --firmware "$WORK/fw.fd" --kernel "$WORK/vmlinuz" --initrd "$WORK/initrd" \
    --cmdline "root=/dev/vda" --kernel-hashes --policy 5 --api-major 1 --api-minor 55 --build-id 21 \
    --tik "$WORK/other-tik" --num-cpus 8 --cpu-signature 0xA00F11)
for _ in $(seq "$RUNS"); do
    start=$(date +%s.%N)
    "$TOOL" --debug -m "$M" --api-major 1 --api-minor 55 --build-id 21 --policy 5 -f "$WORK/fw.fd" \
        -k "$WORK/vmlinuz" -r "$WORK/initrd" -e "root=/dev/vda" --tik "$WORK/tik" --tek "$WORK/tek" \
        -n 8 --cpu-family 25 --cpu-model 1 --cpu-stepping 1 2>&1 | grep -o "Explainer: .*" || true
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "whole run (hashing 42 MiB of inputs, explaining, exit 1): %.3f s\n", b - a }'
done

#!/usr/bin/env bash
# Benchmark the OVMF + COCONUT-SVSM launch digest (`virt-qemu-sev-validate
# snp-digest --svsm`) against PyPI's sev-snp-measure `--mode snp:svsm` on the
# same inputs: a 4 MiB OVMF image, an SVSM image with a footer table (SVSM
# info entry, SEV metadata with SNP_SEC_MEM, SECRETS, CPUID and SVSM_CAA
# sections), a 528 KiB OVMF_VARS size and 4 vCPUs (EPYC-Milan).
#
# Two configurations run, each in its own paired run:
#   1. a 1 MiB SVSM image (SVSM_MIB changes it);
#   2. a 10 MiB SVSM image (SVSM_BIG_MIB changes it).
# Both tools must print the same digest before anything is timed. Timing is
# paired: each round runs ours once and sev-snp-measure once, alternating
# which goes first, so both see the same machine load; the script reports the
# median wall time and the median CPU time (user + system) of each tool and the
# ratio sev-snp-measure / ours.
#
# The floor: every tool must compute the SHA-384 of every 4 KiB page of both
# images. The script times that alone (the least of BENCH_RUNS runs), in
# memory, on one core, with the OpenSSL routine sev-snp-measure itself calls
# (Python's hashlib); ours hashes
# the pages on up to 4 threads, so on a machine with more than one CPU its
# wall time can go below that one-core floor, never its CPU time.
#
# Last, the explainer's worst case on configuration 2 (ours only: a
# MEASUREMENT no variant gives, so every vCPU count, model and OVMF_VARS size
# is tried): its own line and the whole process's time.
#
# Environment:
#   BENCH_RUNS=N       paired rounds per configuration (default 30)
#   SVSM_MIB=N         SVSM image of configuration 1 in MiB (default 1)
#   SVSM_BIG_MIB=N     SVSM image of configuration 2 in MiB (default 10)
#   SEV_SNP_MEASURE    sev-snp-measure to compare with
#                      (default /opt/sev-snp-measure/bin/sev-snp-measure, as scripts/setup.sh installs it)
#   PYTHON             interpreter for the timing harness (default /usr/bin/python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-30}
SVSM_MIB=${SVSM_MIB:-1}
SVSM_BIG_MIB=${SVSM_BIG_MIB:-10}
SSM=${SEV_SNP_MEASURE:-/opt/sev-snp-measure/bin/sev-snp-measure}
PYTHON=${PYTHON:-/usr/bin/python3}
OURS=$ROOT/target/release/virt-qemu-sev-validate

die() { echo "bench-snp-svsm.sh: ERROR: $*" >&2; exit 1; }
note() { echo "bench-snp-svsm.sh: $*" >&2; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ $SVSM_MIB =~ ^[1-9][0-9]*$ ]] || die "SVSM_MIB must be a positive number of MiB (got '$SVSM_MIB')"
[[ $SVSM_BIG_MIB =~ ^[1-9][0-9]*$ ]] || die "SVSM_BIG_MIB must be a positive number of MiB (got '$SVSM_BIG_MIB')"
[[ -x $PYTHON ]] || die "$PYTHON not found"
[[ -x $SSM ]] || die "$SSM not found (scripts/setup.sh installs sev-snp-measure into /opt/sev-snp-measure)"

note "building ours: cargo build --release"
(cd "$ROOT" && cargo build --release --quiet) >&2 || die "cargo build --release failed"
[[ -x $OURS ]] || die "$OURS not built"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/snp-svsm-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- inputs ----
# Random bytes ending in an OVMF-style footer table (laid out as edk2 lays
# out OVMF's, measurement.md §4). OVMF gets an SEV-ES reset block only (its
# footer plays no part in this form); an SVSM image gets the SVSM info entry
# (entry point 0x1000 into the image) and SEV metadata.
note "creating inputs in $TMP"
"$PYTHON" - "$TMP" "$SVSM_MIB" "$SVSM_BIG_MIB" <<'EOF'
import os, struct, sys, uuid
out, small, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
le = lambda s: uuid.UUID(s).bytes_le

def image(size, entries, meta=None):
    img = bytearray(os.urandom(size))
    if meta:
        offset, sections = meta
        m = b"ASEV" + struct.pack("<III", 16 + 12 * len(sections), 1, len(sections))
        m += b"".join(struct.pack("<III", *s) for s in sections)
        img[size - offset:size - offset + len(m)] = m
        entries = [("dc886566-984a-4798-a75e-5585a7bf67cc", struct.pack("<I", offset))] + entries
    table = b"".join(d + struct.pack("<H", len(d) + 18) + le(g) for g, d in entries)
    table += struct.pack("<H", len(table) + 18) + le("96b582de-1fb2-45f7-baea-a366c55a082d")
    img[size - 32 - len(table):size - 32] = table
    img[size - 32:] = bytes(32)
    return img

open(f"{out}/OVMF.fd", "wb").write(
    image(4 << 20, [("00f771de-1a7e-4fcb-890e-68c77e2fb44e", struct.pack("<I", 0x80B004))]))
sections = [(0x800000, 0x9000, 1), (0x809000, 0x1000, 2), (0x80A000, 0x1000, 3),
            (0x80B000, 0x1000, 4)]
info = [("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd", struct.pack("<I", 0x1000))]
for name, mib in (("svsm.bin", small), ("svsm-big.bin", big)):
    open(f"{out}/{name}", "wb").write(image(mib << 20, info, (0x800, sections)))
EOF
COMMON=(--ovmf "$TMP/OVMF.fd" --vars-size 540672 --vcpus 4 --vcpu-type EPYC-Milan)

echo "OVMF + SVSM launch digest benchmark: ours ($OURS) vs sev-snp-measure --mode snp:svsm ($SSM, $("$SSM" --version 2>&1))"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

SSM_PYTHON=$(head -n1 "$SSM" | sed -n 's/^#!//p')
[[ -x $SSM_PYTHON ]] || SSM_PYTHON=$PYTHON

# The SHA-384 of every page of the OVMF and SVSM images, one page at a time
# on one core, with the interpreter sev-snp-measure runs on.
floor_ms() {
    "$SSM_PYTHON" - "$RUNS" "$@" <<'EOF'
import hashlib, sys, time
data = b"".join(open(p, "rb").read() for p in sys.argv[2:])
times = []
for _ in range(max(int(sys.argv[1]), 5)):
    t0 = time.perf_counter_ns()
    for off in range(0, len(data), 4096):
        hashlib.sha384(data[off:off + 4096]).digest()
    times.append((time.perf_counter_ns() - t0) / 1e6)
# The least time: what the hashing costs when nothing else runs.
print(f"{min(times):.2f}")
EOF
}

# One configuration: check that both tools print the same digest, then time
# them in paired rounds. Arguments: a title, the floor in ms, then the
# arguments both tools take.
run_config() {
    local title=$1 floor=$2
    shift 2
    local our_cmd=("$OURS" snp-digest "$@") ssm_cmd=("$SSM" --mode snp:svsm "$@")
    local ours_ld ssm_ld
    ours_ld=$("${our_cmd[@]}") || die "ours failed"
    ssm_ld=$("${ssm_cmd[@]}") || die "sev-snp-measure failed"
    [[ $ours_ld == "$ssm_ld" ]] || die "the digests differ: ours $ours_ld, sev-snp-measure $ssm_ld"
    note "both tools print $ours_ld"
    echo
    echo "== $title"
    PYTHONPATH="$ROOT/scripts" "$PYTHON" - "$RUNS" "$floor" "${#our_cmd[@]}" "${our_cmd[@]}" "${ssm_cmd[@]}" <<'EOF'
import sys
from paired_timing import paired
runs, floor, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
ours, ssm, ratio = paired(runs, sys.argv[4:4 + n], sys.argv[4 + n:])
print(f"paired rounds: {runs} (each: ours once, sev-snp-measure once, alternating order)")
print(f"{'tool':<16} {'median wall (ms)':>17} {'min wall (ms)':>14} {'median CPU (ms)':>16}")
print(f"{'ours':<16} {ours.wall:17.1f} {ours.min_wall:14.1f} {ours.cpu:16.1f}")
print(f"{'sev-snp-measure':<16} {ssm.wall:17.1f} {ssm.min_wall:14.1f} {ssm.cpu:16.1f}")
print(f"speed-up (sev-snp-measure / ours): wall {ratio:.1f}x (median of per-round ratios), CPU {ssm.cpu / ours.cpu:.1f}x")
print(f"floor: the pages' SHA-384 alone takes {floor:.1f} ms on one core (OpenSSL, in memory, the "
      f"least of {max(runs, 5)} runs); ours' least wall time is {ours.min_wall / floor:.2f}x that, its "
      f"median CPU time {ours.cpu / floor:.2f}x")
EOF
}

run_config "1. 4 MiB OVMF + ${SVSM_MIB} MiB SVSM, 528 KiB OVMF_VARS, 4 vCPUs (EPYC-Milan)" \
    "$(floor_ms "$TMP/OVMF.fd" "$TMP/svsm.bin")" --svsm "$TMP/svsm.bin" "${COMMON[@]}"
run_config "2. 4 MiB OVMF + ${SVSM_BIG_MIB} MiB SVSM, 528 KiB OVMF_VARS, 4 vCPUs (EPYC-Milan)" \
    "$(floor_ms "$TMP/OVMF.fd" "$TMP/svsm-big.bin")" --svsm "$TMP/svsm-big.bin" "${COMMON[@]}"

echo
echo "== 3. the explainer's worst case on configuration 2 (ours only; nothing matches)"
NONE=$(printf 'ab%.0s' $(seq 48))
for _ in 1 2 3; do
    t0=$(date +%s%N)
    line=$("$OURS" snp-digest --svsm "$TMP/svsm-big.bin" "${COMMON[@]}" --measurement "$NONE" 2>&1 |
        grep -E 'variants tried' || true)
    t1=$(date +%s%N)
    [[ -n $line ]] || die "the explainer printed no summary"
    echo "$line; whole process $(((t1 - t0) / 1000000)) ms"
done

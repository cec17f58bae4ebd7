#!/usr/bin/env bash
# Benchmark our SEV-SNP launch digest (`virt-qemu-sev-validate snp-digest`)
# against PyPI's sev-snp-measure on the same inputs: a 4 MiB OVMF image with
# SEV-SNP metadata and a kernel hashes page, 4 vCPUs (EPYC-Milan), a kernel
# and a command line (measured direct boot).
#
# Two configurations run, each in its own paired run:
#   1. with the kernel (and a command line): the issue's benchmark;
#   2. the same firmware and vCPUs without a kernel.
# Both tools must print the same digest before anything is timed. Timing is
# paired: each round runs ours once and sev-snp-measure once, alternating
# which goes first, so both see the same machine load; the script reports the
# median wall time and the median CPU time (user + system) of each tool and the
# ratios sev-snp-measure / ours (target: ours at least 10x faster).
#
# The floor: with a kernel, both tools must compute the SHA-256 of the whole
# kernel, one sequential stream that no number of cores can split. The script
# times that hash alone, in memory, with the OpenSSL routine sev-snp-measure
# itself calls (Python's hashlib), and prints the largest speed-up any tool
# could reach on these inputs: sev-snp-measure's median / that time.
# With hyperfine installed (Debian package hyperfine) its summary is printed too.
#
# Environment:
#   BENCH_RUNS=N       paired rounds per configuration (default 30)
#   KERNEL_MIB=N       kernel size in MiB (default 12, a typical distro bzImage)
#   INITRD_MIB=N       also an initrd of N MiB (default 0: none)
#   BENCH_STRICT=1     exit 1 if the 10x target is missed in configuration 1
#   SEV_SNP_MEASURE    sev-snp-measure to compare with
#                      (default /opt/sev-snp-measure/bin/sev-snp-measure, as scripts/setup.sh installs it)
#   PYTHON             interpreter for the timing harness (default /usr/bin/python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-30}
KERNEL_MIB=${KERNEL_MIB:-12}
INITRD_MIB=${INITRD_MIB:-0}
STRICT=${BENCH_STRICT:-0}
SSM=${SEV_SNP_MEASURE:-/opt/sev-snp-measure/bin/sev-snp-measure}
PYTHON=${PYTHON:-/usr/bin/python3}
OURS=$ROOT/target/release/virt-qemu-sev-validate

die() { echo "bench-snp.sh: ERROR: $*" >&2; exit 1; }
note() { echo "bench-snp.sh: $*" >&2; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ $KERNEL_MIB =~ ^[0-9]+$ ]] || die "KERNEL_MIB must be a number of MiB (got '$KERNEL_MIB')"
[[ $INITRD_MIB =~ ^[0-9]+$ ]] || die "INITRD_MIB must be a number of MiB (got '$INITRD_MIB')"
[[ -x $PYTHON ]] || die "$PYTHON not found"
[[ -x $SSM ]] || die "$SSM not found (scripts/setup.sh installs sev-snp-measure into /opt/sev-snp-measure)"

if ! command -v hyperfine >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    note "installing hyperfine (Debian package) for its summary"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
        note "hyperfine not installed; the paired harness alone will time the runs"
fi

note "building ours: cargo build --release"
(cd "$ROOT" && cargo build --release --quiet) >&2 || die "cargo build --release failed"
[[ -x $OURS ]] || die "$OURS not built"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/snp-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- inputs ----
# A 4 MiB firmware: random bytes ending in an OVMF footer table and SEV
# metadata laid out as edk2-stable202405's AmdSevX64 build (measurement.md §4):
# SEV-ES reset block 0x80B004, secret area (0x810000, 0xC00), kernel hashes
# area (0x810C00, 0x400), and seven metadata sections including SNP_KERNEL_HASHES.
note "creating inputs in $TMP"
"$PYTHON" - "$TMP/OVMF.fd" <<'EOF'
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
EOF
head -c $((KERNEL_MIB * 1024 * 1024)) /dev/urandom >"$TMP/vmlinuz"
ARGS=(--ovmf "$TMP/OVMF.fd" --vcpus 4 --vcpu-type EPYC-Milan --kernel "$TMP/vmlinuz")
DESC="4 MiB OVMF, 4 vCPUs (EPYC-Milan), ${KERNEL_MIB} MiB kernel"
if ((INITRD_MIB > 0)); then
    head -c $((INITRD_MIB * 1024 * 1024)) /dev/urandom >"$TMP/initrd"
    ARGS+=(--initrd "$TMP/initrd")
    DESC+=", ${INITRD_MIB} MiB initrd"
fi
ARGS+=("--append=console=ttyS0 root=/dev/vda1 ro quiet")
DESC+=", cmdline"

echo "SEV-SNP launch digest benchmark: ours ($OURS) vs sev-snp-measure ($SSM, $("$SSM" --version 2>&1))"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The SHA-256 of the kernel (or of the initrd, if larger) by itself, with the
# interpreter sev-snp-measure runs on: the floor for any tool on these inputs.
SSM_PYTHON=$(head -n1 "$SSM" | sed -n 's/^#!//p')
[[ -x $SSM_PYTHON ]] || SSM_PYTHON=$PYTHON
STREAMS=("$TMP/vmlinuz")
((INITRD_MIB > 0)) && STREAMS+=("$TMP/initrd")
KERNEL_SHA256_MS=$("$SSM_PYTHON" - "$RUNS" "${STREAMS[@]}" <<'EOF'
import hashlib, statistics, sys, time
floor = 0.0
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    times = []
    for _ in range(max(int(sys.argv[1]), 5)):
        t0 = time.perf_counter_ns()
        hashlib.sha256(data).digest()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    floor = max(floor, statistics.median(times))
print(f"{floor:.2f}")
EOF
)

# One configuration: check that both tools print the same digest, then time
# them in paired rounds. Arguments: a title, strict (1 or 0), the floor in ms
# (0: none), then the arguments both tools take. Returns 3 if strict and the
# target is missed.
run_config() {
    local title=$1 strict=$2 floor=$3
    shift 3
    local our_cmd=("$OURS" snp-digest "$@") ssm_cmd=("$SSM" --mode snp "$@")
    local ours_ld ssm_ld rc=0
    ours_ld=$("${our_cmd[@]}") || die "ours failed"
    ssm_ld=$("${ssm_cmd[@]}") || die "sev-snp-measure failed"
    [[ $ours_ld == "$ssm_ld" ]] || die "the digests differ: ours $ours_ld, sev-snp-measure $ssm_ld"
    note "both tools print $ours_ld"
    echo
    echo "== $title"
    PYTHONPATH="$ROOT/scripts" "$PYTHON" - "$RUNS" "$strict" "$floor" "${#our_cmd[@]}" "${our_cmd[@]}" "${ssm_cmd[@]}" <<'EOF' || rc=$?
import sys
from paired_timing import paired
runs, strict, floor, n = int(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3]), int(sys.argv[4])
ours, ssm, r = paired(runs, sys.argv[5:5 + n], sys.argv[5 + n:])
print(f"paired rounds: {runs} (each: ours once, sev-snp-measure once, alternating order)")
print(f"{'tool':<16} {'median wall (ms)':>17} {'min wall (ms)':>14} {'median CPU (ms)':>16}")
print(f"{'ours':<16} {ours.wall:17.1f} {ours.min_wall:14.1f} {ours.cpu:16.1f}")
print(f"{'sev-snp-measure':<16} {ssm.wall:17.1f} {ssm.min_wall:14.1f} {ssm.cpu:16.1f}")
print(f"speed-up (sev-snp-measure / ours): wall {r:.1f}x (median of per-round ratios), "
      f"best-case {ssm.min_wall / ours.min_wall:.1f}x, CPU {ssm.cpu / ours.cpu:.1f}x")
if floor > 0:
    print(f"floor: the kernel's SHA-256 alone takes {floor:.1f} ms here (OpenSSL, in memory, one "
          f"sequential stream), so no tool that measures this kernel can be more than "
          f"{ssm.wall / floor:.1f}x faster than sev-snp-measure; ours takes {ours.wall / floor:.2f}x that floor")
met = r >= 10
print(f"target ours >= 10x faster (wall): {'met' if met else 'MISSED'}")
sys.exit(3 if strict and not met else 0)
EOF
    if command -v hyperfine >/dev/null 2>&1; then
        echo "hyperfine (not paired; for reference):"
        hyperfine -N --warmup 3 --runs "$RUNS" --style basic \
            -n ours "$(printf '%q ' "${our_cmd[@]}")" \
            -n sev-snp-measure "$(printf '%q ' "${ssm_cmd[@]}")" 2>&1 |
            grep -E 'Benchmark|Time|Range|faster|±' || true
    fi
    return $rc
}

status=0
run_config "1. $DESC" "$STRICT" "$KERNEL_SHA256_MS" "${ARGS[@]}" || status=$?
run_config "2. 4 MiB OVMF, 4 vCPUs (EPYC-Milan), no kernel" 0 0 \
    --ovmf "$TMP/OVMF.fd" --vcpus 4 --vcpu-type EPYC-Milan || status=$?
((status == 3)) && exit 1
exit $status

#!/usr/bin/env bash
# Benchmark the IGVM launch digest (`virt-qemu-sev-validate snp-digest
# --igvm`) against the igvm crate's own SEV-SNP measurement
# (igvm::measurement::generate_snp_measurement, igvm 0.5) run as a program,
# examples/igvm_crate_digest.rs, on the same file: a 10 MiB SEV-SNP IGVM file
# that program builds with the crate's builder (2560 pages of random data,
# 256 zero pages, a parameter area, a SECRETS and a CPUID page, one VMSA).
# sev-snp-measure has no IGVM mode, so it is not compared here.
#
# Both programs must print the same digest before anything is timed. Timing
# is paired and whole-process: each round runs ours once and the crate's
# program once, alternating which goes first, so both see the same machine
# load; the script reports the median wall time and the median CPU time
# (user + system) of each, and the ratio crate / ours. It also prints each
# one's peak RSS (/usr/bin/time -f %M, when installed).
#
# The floor: any launch digest of the file must hash every data page once
# with SHA-384 (2560 pages, one stream per page). The crate's program times
# exactly that, in memory, with the sha2 crate both tools use, in the same
# run; no tool can take less than that on this file.
#
# Environment:
#   BENCH_RUNS=N       paired rounds (default 30)
#   IGVM_MIB=N         MiB of page data in the file (default 10)
#   PYTHON             interpreter for the timing harness (default /usr/bin/python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-30}
IGVM_MIB=${IGVM_MIB:-10}
PYTHON=${PYTHON:-/usr/bin/python3}
OURS=$ROOT/target/release/virt-qemu-sev-validate
CRATE=$ROOT/target/release/examples/igvm_crate_digest

die() { echo "bench-igvm.sh: ERROR: $*" >&2; exit 1; }
note() { echo "bench-igvm.sh: $*" >&2; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ $IGVM_MIB =~ ^[1-9][0-9]*$ ]] || die "IGVM_MIB must be a positive number of MiB (got '$IGVM_MIB')"
((IGVM_MIB <= 100)) || die "IGVM_MIB must be at most 100 (the tool reads IGVM files of up to 128 MiB)"
[[ -x $PYTHON ]] || die "$PYTHON not found"

note "building ours and examples/igvm_crate_digest.rs: cargo build --release"
(cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example igvm_crate_digest) >&2 ||
    die "cargo build --release failed"
[[ -x $OURS ]] || die "$OURS not built"
[[ -x $CRATE ]] || die "$CRATE not built"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/igvm-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FILE=$TMP/bench.igvm
"$CRATE" build --seed 2026 --out "$FILE" --data-pages $((IGVM_MIB * 256)) --zero-pages 256 --vmsas 1 ||
    die "building the IGVM file failed"

ours_ld=$("$OURS" snp-digest --igvm "$FILE") || die "ours failed"
crate_ld=$("$CRATE" digest "$FILE") || die "the crate's program failed"
[[ $ours_ld == "$crate_ld" ]] || die "the digests differ: ours $ours_ld, the igvm crate $crate_ld"
note "both print $ours_ld"

FLOOR_MS=$("$CRATE" floor "$FILE" "$RUNS") || die "timing the floor failed"

peak() {
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f %M -o "$TMP/rss" "$@" >/dev/null && tail -n1 "$TMP/rss"
    else
        echo "?"
    fi
}
OURS_RSS=$(peak "$OURS" snp-digest --igvm "$FILE")
CRATE_RSS=$(peak "$CRATE" digest "$FILE")

echo "IGVM launch digest benchmark: ours ($OURS) vs the igvm crate 0.5's generate_snp_measurement ($CRATE)"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file: $(stat -c %s "$FILE") bytes, ${IGVM_MIB} MiB of page data ($((IGVM_MIB * 256)) pages), 256 zero pages, 1 VMSA"
PYTHONPATH="$ROOT/scripts" "$PYTHON" - "$RUNS" "$FLOOR_MS" "$OURS_RSS" "$CRATE_RSS" "$OURS" "$CRATE" "$FILE" <<'EOF'
import sys
from paired_timing import paired
runs, floor = int(sys.argv[1]), float(sys.argv[2])
ours_rss, crate_rss = sys.argv[3], sys.argv[4]
ours_cmd = [sys.argv[5], "snp-digest", "--igvm", sys.argv[7]]
crate_cmd = [sys.argv[6], "digest", sys.argv[7]]
ours, crate, ratio = paired(runs, ours_cmd, crate_cmd)
print(f"paired rounds: {runs} (each: ours once, the crate's program once, alternating order)")
print(f"{'program':<14} {'median wall (ms)':>17} {'min wall (ms)':>14} {'median CPU (ms)':>16} {'peak RSS (KiB)':>15}")
print(f"{'ours':<14} {ours.wall:17.1f} {ours.min_wall:14.1f} {ours.cpu:16.1f} {ours_rss:>15}")
print(f"{'igvm crate':<14} {crate.wall:17.1f} {crate.min_wall:14.1f} {crate.cpu:16.1f} {crate_rss:>15}")
print(f"ratio (crate / ours): wall {ratio:.2f}x (median of per-round ratios), CPU {crate.cpu / ours.cpu:.2f}x")
print(f"floor: SHA-384 of every data page once, in memory, takes {floor:.1f} ms here; "
      f"ours takes {ours.wall / floor:.2f}x that, the crate's program {crate.wall / floor:.2f}x")
EOF

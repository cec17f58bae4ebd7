#!/usr/bin/env bash
# Benchmark SEV-SNP attestation report validation.
#
# 1. Library throughput, as a verifier service sees it: the example
#    snp_validate_throughput validates the nine real report sets of
#    ../shared/snp-vectors in turn on one thread (signature, binding and
#    policy for each report; the chain verified once per VCEK, then cached)
#    and prints validations per CPU second of that thread (target: 1,500),
#    beside the ECDSA P-384 verification alone, the floor.
# 2. Whole process, one report, certificates on disk, paired with snpguest
#    0.11 (`snpguest verify attestation DIR REPORT`, which checks the
#    signature and TCB only: no chain, no policy). Each round runs both once,
#    alternating which goes first; the script prints the median wall time of
#    each. snpguest is taken from $SNPGUEST, else target/snpguest/bin/snpguest,
#    which `SNPGUEST_INSTALL=1` builds there with
#    `cargo install --locked snpguest --version ~0.11 --root target/snpguest`.
#
# Environment:
#   BENCH_SECONDS=N    seconds of library validation (default 5)
#   BENCH_RUNS=N       paired whole-process rounds (default 40)
#   SNP_VECTORS        the report sets (default ../shared/snp-vectors)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_LIB=${BENCH_SECONDS:-5}
RUNS=${BENCH_RUNS:-40}
VEC=${SNP_VECTORS:-$ROOT/../shared/snp-vectors}
SNPGUEST=${SNPGUEST:-$ROOT/target/snpguest/bin/snpguest}

[[ -f $VEC/EXPECTED.json ]] || { echo "no SNP vectors at $VEC" >&2; exit 2; }
cd "$ROOT"
cargo build --release --quiet --bin virt-qemu-sev-validate --example snp_validate_throughput

echo "== 1. library: report validations per second on one core (chain cached)"
target/release/examples/snp_validate_throughput "$SECONDS_LIB" "$VEC"

echo
echo "== 2. whole process, one report, certificates on disk"
if [[ ! -x $SNPGUEST && ${SNPGUEST_INSTALL:-0} == 1 ]]; then
    cargo install --locked snpguest --version '~0.11' --root "$ROOT/target/snpguest"
fi
SET=milan-v3-microsoft
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp "$VEC/$SET/ark.pem" "$VEC/$SET/ask.pem" "$VEC/$SET/vcek.pem" "$TMP/"
REPORT=$VEC/$SET/report.bin
NONCE=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]['report_data'])" "$VEC/EXPECTED.json" "$SET")
MEASUREMENT=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]['measurement'])" "$VEC/EXPECTED.json" "$SET")
OURS=(target/release/virt-qemu-sev-validate snp-validate "$REPORT" --certs "$TMP" --report-data "$NONCE" --measurement "$MEASUREMENT")
"${OURS[@]}" > /dev/null || { echo "ours does not validate $SET" >&2; exit 1; }
THEIRS=()
if [[ -x $SNPGUEST ]]; then
    THEIRS=("$SNPGUEST" verify attestation "$TMP" "$REPORT")
    "${THEIRS[@]}" > /dev/null || { echo "snpguest does not verify $SET" >&2; exit 1; }
    echo "snpguest: $("$SNPGUEST" --version)"
else
    echo "snpguest not found at $SNPGUEST (SNPGUEST_INSTALL=1 builds it): timing ours alone"
fi
/usr/bin/python3 - "$RUNS" "${#OURS[@]}" "${OURS[@]}" "${THEIRS[@]}" <<'EOF'
import os, statistics, subprocess, sys, time
runs, n = int(sys.argv[1]), int(sys.argv[2])
ours, theirs = sys.argv[3:3 + n], sys.argv[3 + n:]
def once(cmd):
    # Wall time, and CPU time (user + system) from wait4: on a shared
    # machine the CPU time is the steadier figure.
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    assert os.waitstatus_to_exitcode(status) == 0, cmd
    return wall, ru.ru_utime + ru.ru_stime
o, t = [], []
for i in range(runs):
    pair = [(o, ours), (t, theirs)] if i % 2 == 0 else [(t, theirs), (o, ours)]
    for acc, cmd in pair:
        if cmd:
            acc.append(once(cmd))
def med(xs, k):
    return statistics.median(x[k] for x in xs) * 1e3
print(f"ours (every check, chain verified): median {med(o,0):.2f} ms wall, {med(o,1):.2f} ms CPU over {runs} runs")
if t:
    print(f"snpguest verify attestation (signature and TCB): median {med(t,0):.2f} ms wall, {med(t,1):.2f} ms CPU")
    print(f"ratio snpguest / ours: {med(t,0)/med(o,0):.2f} wall, {med(t,1)/med(o,1):.2f} CPU")
EOF

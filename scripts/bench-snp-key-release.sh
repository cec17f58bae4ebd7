#!/usr/bin/env bash
# Benchmark the SEV-SNP attested key release beyond validation: sealing (the
# owner, once the evidence validated) and opening (the guest).
#
# 1. In process: the example snp_key_release_throughput times
#    core::snp_secret::seal and ::open (and the guest's key pair generation)
#    over many iterations on one thread and prints µs per operation.
# 2. Whole process, paired (each round runs both once, alternating which goes
#    first; the script prints the median wall and CPU time of each):
#    a. `snp-validate EVIDENCE --nonce --measurement ...` without sealing
#       against the same with `--seal-secret luks-key:FILE --sealed-out`:
#       the difference is what sealing adds to a validation;
#    b. `snp-open SEALED --key-dir DIR --secret luks-key` against the
#       independent opener tests/sim/snp_key_release.py (pyhpke, as
#       scripts/setup.sh installs it in /opt/pyhpke) on the same file and key.
# The evidence is made without a guest: a key pair and REPORT_DATA from
# tests/sim/snp_key_release.py, a report with that REPORT_DATA signed by the
# simulated SNP firmware (tests/sim/snp_sp.py) with a test chain.
#
# Environment:
#   BENCH_ITERATIONS=N   in-process iterations of each operation (default 2000)
#   BENCH_RUNS=N         paired whole-process rounds (default 40)
set -euo pipefail
umask 077

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ITERATIONS=${BENCH_ITERATIONS:-2000}
RUNS=${BENCH_RUNS:-40}
PY=/usr/bin/python3
PYHPKE=/opt/pyhpke/bin/python3

cd "$ROOT"
$PYHPKE -c 'import pyhpke, cryptography' 2>/dev/null \
    || { echo "pyhpke is needed in /opt/pyhpke: run scripts/setup.sh as root" >&2; exit 2; }
cargo build --release --quiet --bin virt-qemu-sev-validate --example snp_key_release_throughput
TOOL=$ROOT/target/release/virt-qemu-sev-validate

echo "== 1. in process: seal and open alone"
target/release/examples/snp_key_release_throughput "$ITERATIONS"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -m 700 "$TMP/keys"
mkdir -p target/tmp/snp-sim-keys
$PY tests/sim/snp_sp.py chain --product milan --out "$TMP/chain" --keys target/tmp/snp-sim-keys >/dev/null
NONCE=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
MEASUREMENT=$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')
KEY=$TMP/keys/snp-key-release.key
PUBLIC=$($PYHPKE tests/sim/snp_key_release.py keypair --out "$KEY")
REPORT_DATA=$($PYHPKE tests/sim/snp_key_release.py binding "$NONCE" "$PUBLIC")
$PY tests/sim/snp_sp.py report --chain "$TMP/chain" --out "$TMP/report.bin" \
    --measurement "$MEASUREMENT" --report-data "$REPORT_DATA" >/dev/null
$PY - "$TMP/report.bin" "$NONCE" "$PUBLIC" "$TMP/evidence.json" <<'EOF'
import base64, json, sys
report, nonce, public, out = sys.argv[1:]
json.dump({"format": "virt-qemu-sev-validate/snp-evidence/v1",
           "suite": {"kem": 17, "kdf": 2, "aead": 2}, "nonce": nonce, "public_key": public,
           "report": base64.b64encode(open(report, "rb").read()).decode(), "cert_table": None,
           "report_source": "external"}, open(out, "w"), indent=2)
EOF
head -c 32 /dev/urandom > "$TMP/disk.key"

VALIDATE=("$TOOL" snp-validate "$TMP/evidence.json" --nonce "$NONCE" --measurement "$MEASUREMENT"
    --vcek "$TMP/chain/vcek.der" --trust-anchors "$TMP/chain/ark.pem" --trust-anchors "$TMP/chain/ask.pem")
SEAL=("${VALIDATE[@]}" --seal-secret "luks-key:$TMP/disk.key" --sealed-out "$TMP/sealed.bin")
OPEN=("$TOOL" snp-open "$TMP/sealed.bin" --key-dir "$TMP/keys" --secret luks-key)
PEER=("$PYHPKE" "$ROOT/tests/sim/snp_key_release.py" open "$TMP/sealed.bin" "$KEY")
# Every command must do its job before it is timed.
"${VALIDATE[@]}" >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; echo "the evidence does not validate" >&2; exit 1; }
"${SEAL[@]}" >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; echo "sealing failed" >&2; exit 1; }
"${OPEN[@]}" | cmp - "$TMP/disk.key" || { echo "snp-open did not give the key back" >&2; exit 1; }
want=$(od -An -tx1 "$TMP/disk.key" | tr -d ' \n')
"${PEER[@]}" | grep -q "\"data\": \"$want\"" || { echo "pyhpke did not open the sealed file" >&2; exit 1; }

paired() {
    local title=$1 a_name=$2 b_name=$3
    shift 3
    $PY - "$RUNS" "$title" "$a_name" "$b_name" "$@" <<'EOF'
import os, statistics, subprocess, sys, time
runs, title, a_name, b_name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
rest = sys.argv[5:]
cut = rest.index("--")
a, b = rest[:cut], rest[cut + 1:]
def once(cmd):
    # Wall time, and CPU time (user + system) from wait4: on a shared
    # machine the CPU time is the steadier figure.
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    assert os.waitstatus_to_exitcode(status) == 0, cmd
    return wall, ru.ru_utime + ru.ru_stime
ta, tb = [], []
for i in range(runs):
    pair = [(ta, a), (tb, b)] if i % 2 == 0 else [(tb, b), (ta, a)]
    for acc, cmd in pair:
        acc.append(once(cmd))
def med(xs, k):
    return statistics.median(x[k] for x in xs) * 1e3
print(f"== {title} ({runs} paired rounds, medians)")
print(f"{a_name}: {med(ta,0):.2f} ms wall, {med(ta,1):.2f} ms CPU")
print(f"{b_name}: {med(tb,0):.2f} ms wall, {med(tb,1):.2f} ms CPU")
print(f"difference: {med(tb,0)-med(ta,0):+.2f} ms wall, {med(tb,1)-med(ta,1):+.2f} ms CPU")
EOF
}

echo
paired "2a. whole process: snp-validate, without and with sealing" \
    "snp-validate (validation only)" "snp-validate --seal-secret --sealed-out" \
    "${VALIDATE[@]}" -- "${SEAL[@]}"
echo
paired "2b. whole process: opening, ours and the pyhpke peer" \
    "snp-open (ours)" "snp_key_release.py open (pyhpke $($PYHPKE -c 'import importlib.metadata as m; print(m.version("pyhpke"))'))" \
    "${OPEN[@]}" -- "${PEER[@]}"

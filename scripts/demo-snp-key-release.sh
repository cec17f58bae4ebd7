#!/usr/bin/env bash
# The end of scripts/demo.sh --snp: a disk key released to an SEV-SNP guest whose report
# validated (schema/snp-key-release.md), and refused to evidence the host tampered with.
#
#   scripts/demo-snp-key-release.sh TOOL [LAUNCH.json]
#
# The guest's kernel interface is tests/sim/configfs_tsm.py: a simulated configfs-tsm over FUSE
# whose reports the simulated SNP firmware (tests/sim/snp_sp.py) signs with a test chain. The
# real `snp-request` asks it, as it would ask /sys/kernel/config/tsm in a guest; the owner runs
# `snp-validate --nonce --seal-secret --sealed-out`, the guest `snp-open`. LAUNCH.json (written
# by examples/demo_snp_libvirt.rs, then removed) is the launch part 3 ran: its MEASUREMENT and
# HOST_DATA go into the simulated guest's reports, and the owner expects the digest its
# snp-digest computed for that domain. Without it the reports carry the simulator's default
# (MEASUREMENT zero) and the owner expects that. Needs root, /dev/fuse, python3-fusepy.
set -euo pipefail
umask 077
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOL=${1:?usage: $0 TOOL [LAUNCH.json]}
LAUNCH=${2:-}
PY=/usr/bin/python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/snp-key-release.XXXXXX")
MNT=$WORK/tsm
SIM_PID=

cleanup() {
    if [[ -n $SIM_PID ]]; then
        umount "$MNT" 2>/dev/null || fusermount -u "$MNT" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SIM_PID" 2>/dev/null || break; sleep 0.1; done
        kill "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
    fi
    if mountpoint -q "$MNT" 2>/dev/null; then
        echo "demo: $MNT is still mounted" >&2
    else
        rm -rf "$WORK"
    fi
    [[ -z $LAUNCH ]] || rm -f "$LAUNCH"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
step() { printf '\n== %s\n' "$*"; }
# snp-validate's lines that say what this part shows: the binding, the launch, the verdict.
verdict() { grep -E '^  [A-Za-z]+ +expect\.(key_binding|measurement|host_data) |^  FAIL|^(VALID|INVALID|SEALED)' || true; }
field() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$LAUNCH" "$1"; }

printf '\n######## Part 3, continued: a disk key released to the guest once its report validated\n'

if [[ -n $LAUNCH ]]; then
    EXPECTED=$(field expected_digest)
    LAUNCH_ARGS=(--measurement "$(field measurement)" --host-data "$(field host_data)")
    OWNER_ARGS=(--host-data "$(field host_data)")
    WHERE="the launch above: MEASUREMENT and HOST_DATA as the simulated firmware launched the domain"
    OWNER_EXPECTS="the digest snp-digest computed for the domain, and its HOST_DATA"
else
    EXPECTED=$(printf '0%.0s' $(seq 96))
    LAUNCH_ARGS=()
    OWNER_ARGS=()
    WHERE="the simulator's default launch (MEASUREMENT zero: no LAUNCH.json given)"
    OWNER_EXPECTS="the simulator's default MEASUREMENT, zero"
fi

step "Guest: its kernel's configfs-tsm, simulated over FUSE at $MNT"
mkdir "$MNT" "$WORK/chain"
# RSA-4096 test keys are slow to make: kept where the tests and part 3 keep theirs.
mkdir -p target/tmp/snp-sim-keys
$PY tests/sim/snp_sp.py chain --product milan --out "$WORK/chain" --keys target/tmp/snp-sim-keys >/dev/null
$PY tests/sim/configfs_tsm.py "$MNT" --chain "$WORK/chain" "${LAUNCH_ARGS[@]}" 2>"$WORK/sim.log" &
SIM_PID=$!
for _ in $(seq 100); do [[ -d $MNT/report ]] && break; sleep 0.1; done
[[ -d $MNT/report ]] || { echo "demo: configfs_tsm.py did not mount: $(cat "$WORK/sim.log")" >&2; exit 1; }
echo "reports signed by the simulated SNP firmware's test chain, for $WORK/chain's VCEK,"
echo "with $WHERE"

step "Owner: a fresh nonce (32 random bytes), sent to the guest"
NONCE=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "nonce $NONCE"

step "Guest: snp-request makes a key pair and asks its kernel for a report binding the nonce and the public key"
mkdir -m 700 "$WORK/guest-keys"
"$TOOL" snp-request --nonce "$NONCE" --key-dir "$WORK/guest-keys" --tsm-root "$MNT/report" \
    --evidence-out "$WORK/evidence.json"
echo "evidence.json goes to the owner (through the host); the private key stays in $WORK/guest-keys"

step "Owner: validate the evidence (expecting $OWNER_EXPECTS), and only then seal a new disk key to the guest's key"
head -c 32 /dev/urandom > "$WORK/disk.key"
VALIDATE=("$TOOL" snp-validate --measurement "$EXPECTED" "${OWNER_ARGS[@]}"
    --vcek "$WORK/chain/vcek.der" --trust-anchors "$WORK/chain/ark.pem" --trust-anchors "$WORK/chain/ask.pem")
"${VALIDATE[@]}" "$WORK/evidence.json" --nonce "$NONCE" \
    --seal-secret "luks-key:$WORK/disk.key" --sealed-out "$WORK/sealed.bin" | verdict
echo "sealed.bin ($(stat -c %s "$WORK/sealed.bin") bytes) goes to the guest; --trust-anchors stands in for AMD's roots (test chain)"

step "Guest: snp-open opens it with the private key"
"$TOOL" snp-open "$WORK/sealed.bin" --key-dir "$WORK/guest-keys" --secret luks-key > "$WORK/opened.key"
cmp "$WORK/disk.key" "$WORK/opened.key"
echo "the guest's key equals the owner's disk key (cmp: identical, $(stat -c %s "$WORK/opened.key") bytes)"

refused() {
    local what=$1 evidence=$2 nonce=$3 rc
    step "$what (expect exit 1, nothing sealed)"
    set +e
    "${VALIDATE[@]}" "$evidence" --nonce "$nonce" \
        --seal-secret "luks-key:$WORK/disk.key" --sealed-out "$WORK/refused.bin" 2>&1 | verdict
    rc=${PIPESTATUS[0]}
    set -e
    echo "exit status $rc; sealed file written: $([[ -e $WORK/refused.bin ]] && echo YES || echo no)"
    [[ $rc -eq 1 && ! -e $WORK/refused.bin ]] || { echo "demo: expected exit 1 and no sealed file" >&2; exit 1; }
}

# The host puts its own public key in the evidence, to read what the owner seals.
$PY - "$WORK/evidence.json" "$WORK/swapped.json" <<'PY'
import json, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
e = json.load(open(sys.argv[1]))
host_key = ec.generate_private_key(ec.SECP384R1()).public_key()
e["public_key"] = host_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()
json.dump(e, open(sys.argv[2], "w"), indent=2)
PY
refused "Host: swaps its own public key into the evidence" "$WORK/swapped.json" "$NONCE"

NEW_NONCE=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
refused "Host: replays the old evidence when the owner asks again with a new nonce" \
    "$WORK/evidence.json" "$NEW_NONCE"

step "Done: the key was released to the guest whose report validated and opened there; tampered evidence got nothing."

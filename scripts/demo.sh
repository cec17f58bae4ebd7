#!/usr/bin/env bash
# The main job, shown locally on this machine (no SEV hardware needed).
#
#   scripts/demo.sh            the three parts below, in order
#   scripts/demo.sh --libvirt  part 1 only
#   scripts/demo.sh --offline  part 2 only
#   scripts/demo.sh --snp      part 3 only
#
# Part 1 (examples/demo_libvirt.rs): a simulated SEV host, i.e. a real libvirtd driving real
# QEMU whose emulator (tests/sim/qemu_sev_wrapper.py) plays the AMD SEV firmware, the harness
# of tests/e2e/e2e_libvirt.rs. It launches a paused SEV-ES guest of Debian's OVMF, the tool
# validates it through libvirt (--insecure: local connection) and injects a generated disk
# passphrase; the demo shows the simulated firmware decrypted exactly that passphrase in the
# firmware's secret area, the guest running, a tampered launch refused, and stops everything
# it started.
#
# Both parts use a copy of Debian's OVMF.fd whose SEV secret area entry (zeroed in Debian's
# build) is filled in, as edk2's AmdSevX64 build (OVMF.amdsev.fd) declares it, so the secret
# goes where the firmware looks for it. A real guest needs that AmdSev build.
#
# Part 2, offline: the host side is played by tests/sim/sev_sp.py, a simulated AMD Secure
# Processor (an independent implementation): it measures the launch the way the SEV firmware
# does and later verifies and decrypts the secret packet written to files.
#
# Part 3 (examples/demo_snp_libvirt.rs): SEV-SNP guests through libvirt, on libvirt 11.3 and
# QEMU 10.0 from bookworm-backports (the chroot scripts/setup-libvirt11.sh builds, a few
# minutes the first time), the harness of tests/e2e/e2e_snp.rs: the wrapper answers QMP as QEMU
# 10.0 does for an SNP guest and simulates SNP_LAUNCH_FINISH. A domain whose ID block was made
# for 4 vCPUs, with 2, is caught before it starts (exit 1, the change named; over qemu+ssh://
# when sshd can run) and the simulated firmware refuses it when started anyway; the right ID
# block passes, the guest starts, and a report signed by the simulated SNP firmware's test
# chain (tests/sim/snp_sp.py) validates against the domain with --report. Then
# (scripts/demo-snp-key-release.sh, 2 s) a disk key is released to the guest of that launch: the
# real `snp-request` asks a simulated configfs-tsm (tests/sim/configfs_tsm.py over FUSE, whose
# reports carry the launch's MEASUREMENT and HOST_DATA), the owner validates the evidence against
# the digest snp-digest computed for the domain and seals a new key (`snp-validate --nonce
# --seal-secret --sealed-out`), the guest opens it (`snp-open`, the same bytes by cmp), and
# evidence the host tampered with (its own public key swapped in; an old evidence replayed for a
# new nonce) is refused, exit 1, nothing sealed. The FUSE mount is undone on every exit.
set -euo pipefail
umask 077
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PART=all
case ${1:-} in
    "") ;;
    --libvirt) PART=libvirt ;;
    --offline) PART=offline ;;
    --snp) PART=snp ;;
    *) echo "usage: $0 [--libvirt | --offline | --snp]" >&2; exit 2 ;;
esac

scripts/setup.sh
echo "demo: building the tool (cargo build --release)"
cargo build --release --quiet
TOOL=${CARGO_TARGET_DIR:-$PWD/target}/release/virt-qemu-sev-validate

snp_part() {
    scripts/setup-libvirt11.sh
    echo "demo: building the SNP demo (cargo build --release --example demo_snp_libvirt)"
    cargo build --release --quiet --example demo_snp_libvirt
    printf '\n######## Part 3: SEV-SNP guests through libvirt 11.3: the ID block before launch, the report after\n'
    # The harness's sshd runs as its unprivileged user and must read the key files the harness
    # writes: the default umask for it (the demo's own owner files are written 0600).
    local launch
    launch=$(mktemp "${TMPDIR:-/tmp}/snp-demo-launch.XXXXXX")
    (umask 022 && SEV_VALIDATE_BIN=$TOOL SNP_DEMO_LAUNCH_OUT=$launch \
        "${CARGO_TARGET_DIR:-$PWD/target}/release/examples/demo_snp_libvirt") || { rm -f "$launch"; return 1; }
    scripts/demo-snp-key-release.sh "$TOOL" "$launch"
}

if [[ $PART == snp ]]; then
    snp_part
    exit 0
fi

if [[ $PART != offline ]]; then
    echo "demo: building the libvirt demo (cargo build --release --example demo_libvirt)"
    cargo build --release --quiet --example demo_libvirt
    printf '\n######## Part 1: validate a guest on a simulated SEV host through libvirt\n'
    SEV_VALIDATE_BIN=$TOOL "${CARGO_TARGET_DIR:-$PWD/target}/release/examples/demo_libvirt"
    [[ $PART == libvirt ]] && exit 0
    printf '\n######## Part 2: the same job offline, with values copied from the host\n'
fi

SP="/usr/bin/python3 $PWD/tests/sim/sev_sp.py"
DEBIAN_FIRMWARE=${FIRMWARE:-/usr/share/ovmf/OVMF.fd}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sev-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s\n' "$*"; }

# The SEV secret area, in the OVMF footer table entry 4c2eb361-7d9b-4cc3-8081-127c90d3d294
# ({u32 base; u32 size}); Debian's OVMF.fd has it zeroed. Fills it in a copy, as the tests do.
SECRET_BASE=0x80F000
SECRET_SIZE=0xC00
FIRMWARE=$WORK/OVMF-secret-area.fd
/usr/bin/python3 - "$DEBIAN_FIRMWARE" "$FIRMWARE" "$SECRET_BASE" "$SECRET_SIZE" <<'PY'
import struct, sys, uuid
src, dst, base, size = sys.argv[1], sys.argv[2], int(sys.argv[3], 0), int(sys.argv[4], 0)
fw = bytearray(open(src, "rb").read())
footer = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d").bytes_le
secret = uuid.UUID("4c2eb361-7d9b-4cc3-8081-127c90d3d294").bytes_le
n = len(fw)
if fw[n - 48:n - 32] != footer:
    sys.exit(f"demo: {src} has no OVMF footer table")
start = n - 32 - struct.unpack_from("<H", fw, n - 50)[0]
pos = n - 50
while pos >= start + 18:
    length = struct.unpack_from("<H", fw, pos - 18)[0]
    if fw[pos - 16:pos] == secret and length >= 26:
        if struct.unpack_from("<II", fw, pos - 26) == (0, 0):
            struct.pack_into("<II", fw, pos - 26, base, size)
        break
    if length < 18:
        sys.exit(f"demo: {src}: malformed OVMF footer table")
    pos -= length
else:
    sys.exit(f"demo: {src} has no secret area entry in its footer table")
open(dst, "wb").write(fw)
PY

step "Owner: transport keys (TEK then TIK) and a disk key, on the owner's machine"
head -c 32 /dev/urandom > "$WORK/tk.bin"
head -c 16 "$WORK/tk.bin" > "$WORK/tek.bin"
tail -c 16 "$WORK/tk.bin" > "$WORK/tik.bin"
printf 'demo-disk-passphrase' > "$WORK/disk.key"
echo "keys in $WORK (private: umask 077)"

step "Firmware: a copy of $DEBIAN_FIRMWARE with its secret area declared at $SECRET_BASE ($SECRET_SIZE bytes)"
echo "as edk2's AmdSevX64 build (OVMF.amdsev.fd) declares it; Debian ships the entry zeroed."
echo "The host and the owner both use this copy: $FIRMWARE"

step "Host: launch an SEV-ES guest (policy 0x5, 4 vCPUs, EPYC-Milan); the SEV firmware reports:"
MEASUREMENT=$($SP measure --firmware "$FIRMWARE" --policy 5 --api-major 1 --api-minor 55 --build-id 21 \
    --tik "$WORK/tik.bin" --num-cpus 4 --cpu-signature 0xA00F11)
echo "measurement $MEASUREMENT, API 1.55, build 21, policy 0x5"

step "Owner: validate the launch and package the disk key"
"$TOOL" --measurement "$MEASUREMENT" --api-major 1 --api-minor 55 --build-id 21 --policy 5 \
    --firmware "$FIRMWARE" --num-cpus 4 --cpu-family 25 --cpu-model 1 --cpu-stepping 1 \
    --tk "$WORK/tk.bin" --inject-secret "luks-key:$WORK/disk.key" \
    --secret-header "$WORK/secret-header.b64" --secret-payload "$WORK/secret-payload.b64"
ls -l "$WORK"/secret-*.b64

step "Host: injects the packet into the firmware's secret area at $SECRET_BASE; the SEV firmware checks it with the TIK, decrypts it with the TEK, and finds:"
$SP decrypt-secret --tk "$WORK/tk.bin" --measurement "$MEASUREMENT" \
    --header "$WORK/secret-header.b64" --payload "$WORK/secret-payload.b64" \
    --expect "736869e5-84f0-4973-92ec-06879ce3da0b=$WORK/disk.key"
echo "(hex of 'demo-disk-passphrase': $(printf 'demo-disk-passphrase' | od -An -tx1 | tr -d ' \n'))"

step "A host that launched other firmware is caught (expect exit 1)"
cp "$FIRMWARE" "$WORK/tampered.fd"
printf '\x90' | dd of="$WORK/tampered.fd" bs=1 seek=4096 conv=notrunc status=none
BAD=$($SP measure --firmware "$WORK/tampered.fd" --policy 5 --api-major 1 --api-minor 55 --build-id 21 \
    --tik "$WORK/tik.bin" --num-cpus 4 --cpu-signature 0xA00F11)
set +e
"$TOOL" --measurement "$BAD" --api-major 1 --api-minor 55 --build-id 21 --policy 5 \
    --firmware "$FIRMWARE" --num-cpus 4 --cpu-family 25 --cpu-model 1 --cpu-stepping 1 --tk "$WORK/tk.bin"
rc=$?
set -e
echo "exit status $rc"
[[ $rc -eq 1 ]] || { echo "demo: expected exit 1 for the tampered launch" >&2; exit 1; }

step "Done: the genuine launch validated and its key was packaged for the firmware's secret area; the tampered one was refused."

if [[ $PART == all ]]; then
    snp_part
fi

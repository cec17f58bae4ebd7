#!/usr/bin/python3
"""Simulated AMD Secure Processor (plus the QEMU/KVM parts that feed it) for SEV and SEV-ES.

This is an independent implementation written from shared/spec/measurement.md, used by tests
and demos to play the role of the platform firmware:

  measure         what LAUNCH_MEASURE returns: base64(HMAC(TIK, ...LD...) || MNONCE)
  decrypt-secret  what LAUNCH_SECRET does with a packet: check the header MAC, decrypt, and
                  (stricter than the SP) check the EFI secret table inside

It deliberately shares no code with the Rust tool it is meant to check.
Only the standard library and python3-cryptography are used.

Exit status: 0 success, 1 verification failure (bad MAC, bad table, --expect mismatch,
firmware QEMU would refuse), 2 usage error (argparse, unreadable or malformed input), 3 internal error (a simulator bug).
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import os
import secrets
import struct
import sys
import traceback
import uuid

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CHUNK = 1 << 20
PAGE = 4096


def guid_le(text):
    """On-disk (EFI, mixed-endian) form of a GUID string."""
    return uuid.UUID(text).bytes_le


GUID_FOOTER_TABLE = guid_le("96b582de-1fb2-45f7-baea-a366c55a082d")
GUID_SEV_ES_RESET = guid_le("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
GUID_HASH_AREA = guid_le("7255371f-3a3b-4b04-927b-1da6efa8d454")
GUID_HASH_TABLE = guid_le("9438d606-4f22-4cc9-b479-a793d411fd21")
GUID_HASH_KERNEL = guid_le("4de79437-abd2-427f-b835-d5b172d2045b")
GUID_HASH_INITRD = guid_le("44baf731-3a2f-4bd7-9af1-41e29169781d")
GUID_HASH_CMDLINE = guid_le("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")
GUID_SECRET_TABLE = guid_le("1e74f542-71dd-4d66-963e-ef4287ff173b")

POLICY_ES = 1 << 2
BSP_EIP = 0xFFFFFFF0
HASH_TABLE_SIZE = 176  # 168-byte SevHashTable rounded up to 16
SECRET_HDR_LEN = 52


class Failure(Exception):
    """Verification failed: exit 1."""


class UsageError(Exception):
    """Bad or unreadable input: exit 2."""


# --------------------------------------------------------------------------------------------
# Input helpers


def read_exact(path, size, what):
    try:
        with open(path, "rb") as f:
            data = f.read(size + 1)
    except OSError as e:
        raise UsageError(f"cannot read {what} {path!r}: {e.strerror}")
    if len(data) != size:
        raise UsageError(f"{what} {path!r} must be exactly {size} bytes")
    return data


def sha256_file(path, h=None):
    """Stream a file into a SHA-256 (new or given) so large images are never held whole."""
    h = h or hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
    except OSError as e:
        raise UsageError(f"cannot read {path!r}: {e.strerror}")
    return h


def load_keys(args, need_tek):
    """Return (tek, tik). --tk is TEK || TIK, as libvirt's tool and sevctl store it."""
    tek_path = getattr(args, "tek", None)  # measure has no --tek
    if args.tk:
        if args.tik or tek_path:
            raise UsageError("--tk excludes --tik/--tek")
        tk = read_exact(args.tk, 32, "TK file")
        return tk[:16], tk[16:]
    if not args.tik or (need_tek and not tek_path):
        raise UsageError("--tik" + (" and --tek" if need_tek else "") + " (or --tk) required")
    tek = read_exact(tek_path, 16, "TEK file") if tek_path else None
    return tek, read_exact(args.tik, 16, "TIK file")


def int_arg(lo, hi):
    """argparse type: integer in any Python base (0x.., decimal) within [lo, hi]."""

    def parse(text):
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} out of range {lo}..{hi:#x}")
        return value

    return parse


def b64_decode(text, what):
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{what} is not valid base64")


def file_or_b64(value, what):
    """A path to a file holding base64 text (as libvirt's tool writes), or base64 itself."""
    if os.path.isfile(value):
        try:
            with open(value, "r", encoding="ascii") as f:
                value = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read {what} file: {e}")
    return b64_decode(value, what)


# --------------------------------------------------------------------------------------------
# OVMF footer table (edk2 ResetVector): entries are `data || u16 len || GUID`, walked backwards


def ovmf_footer_entries(path):
    """Map GUID (LE bytes) -> entry data from the firmware's GUIDed footer table."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            # The table length is a u16, so the last 64 KiB + footer always suffices.
            tail_len = min(size, 0x10000 + 64)
            f.seek(size - tail_len)
            tail = f.read(tail_len)
    except OSError as e:
        raise UsageError(f"cannot read firmware {path!r}: {e.strerror}")

    entries = {}
    end = len(tail) - 32  # the footer entry ends 32 bytes before the end of the image
    if end < 18 or tail[end - 16:end] != GUID_FOOTER_TABLE:
        # No table. (Pre-2021 OVMF kept a lone reset block here; not supported.)
        return entries

    (table_len,) = struct.unpack_from("<H", tail, end - 18)
    start = end - table_len
    if table_len < 18 or start < 0:
        return entries
    pos = end - 18  # just past the last real entry
    while pos - 18 >= start:
        guid = tail[pos - 16:pos]
        (length,) = struct.unpack_from("<H", tail, pos - 18)
        if length < 18 or pos - length < start:
            break  # malformed: stop rather than guess
        entries[guid] = tail[pos - length:pos - 18]
        pos -= length
    return entries


def ap_reset_address(firmware):
    data = ovmf_footer_entries(firmware).get(GUID_SEV_ES_RESET)
    if data is None or len(data) < 4:
        raise Failure("firmware has no SEV-ES reset block: QEMU cannot start SEV-ES APs")
    (addr,) = struct.unpack_from("<I", data)
    if addr == 0:
        raise Failure("firmware SEV-ES reset address is 0 (no SEV-ES support)")
    return addr


def check_hash_area(firmware):
    """QEMU refuses kernel-hashes unless the firmware reserves a big enough hash area."""
    data = ovmf_footer_entries(firmware).get(GUID_HASH_AREA)
    if data is None or len(data) < 8:
        raise Failure("firmware has no SEV hash table area: QEMU refuses kernel-hashes=on")
    base, size = struct.unpack_from("<II", data)
    if base == 0 or size < HASH_TABLE_SIZE:
        raise Failure(f"firmware hash area base {base:#x} size {size:#x} unusable for kernel hashes")


# --------------------------------------------------------------------------------------------
# Measured content


def kernel_hash_table(kernel, initrd, cmdline):
    """176-byte padded SevHashTable; entries in the order cmdline, initrd, kernel."""
    # QEMU hashes the command line including its terminating NUL; no -append means "\0".
    h_cmdline = hashlib.sha256((cmdline or b"") + b"\0").digest()
    h_initrd = sha256_file(initrd).digest() if initrd else hashlib.sha256(b"").digest()
    h_kernel = sha256_file(kernel).digest()
    body = b"".join(
        guid + struct.pack("<H", 50) + digest
        for guid, digest in (
            (GUID_HASH_CMDLINE, h_cmdline),
            (GUID_HASH_INITRD, h_initrd),
            (GUID_HASH_KERNEL, h_kernel),
        )
    )
    table = GUID_HASH_TABLE + struct.pack("<H", 18 + len(body)) + body
    return table + bytes(HASH_TABLE_SIZE - len(table))


def build_vmsa(eip, signature, init2=False, sev_features=0):
    """One 4096-byte VMSA page in the state QEMU + KVM give a vCPU at reset (§5).

    Legacy KVM_SEV_ES_INIT leaves the FPU area zero; KVM_SEV_INIT2 copies MXCSR/FCW in.
    """
    page = bytearray(PAGE)

    def seg(off, selector, attrib, limit, base):
        struct.pack_into("<HHIQ", page, off, selector, attrib, limit, base)

    def u64(off, value):
        struct.pack_into("<Q", page, off, value)

    for off in (0x00, 0x30, 0x40, 0x50):  # ES, DS, FS, GS
        seg(off, 0, 0x93, 0xFFFF, 0)
    seg(0x10, 0xF000, 0x9B, 0xFFFF, eip & 0xFFFF0000)  # CS: real-mode reset segment
    seg(0x20, 0, 0x93, 0xFFFF, 0)  # SS
    seg(0x60, 0, 0, 0xFFFF, 0)  # GDTR
    seg(0x70, 0, 0x82, 0xFFFF, 0)  # LDTR
    seg(0x80, 0, 0, 0xFFFF, 0)  # IDTR
    seg(0x90, 0, 0x8B, 0xFFFF, 0)  # TR: QEMU's busy 32-bit TSS overrides KVM's 0x83
    u64(0xD0, 0x1000)  # EFER.SVME
    u64(0x148, 0x40)  # CR4.MCE
    u64(0x158, 0x10)  # CR0.ET
    u64(0x160, 0x400)  # DR7
    u64(0x168, 0xFFFF0FF0)  # DR6
    u64(0x170, 0x2)  # RFLAGS
    u64(0x178, eip & 0xFFFF)  # RIP
    u64(0x268, 0x0007040600070406)  # G_PAT
    u64(0x310, signature)  # RDX = CPUID(1).EAX
    u64(0x3B0, sev_features)
    u64(0x3E8, 0x1)  # XCR0
    if init2:
        struct.pack_into("<I", page, 0x408, 0x1F80)  # MXCSR
        struct.pack_into("<H", page, 0x410, 0x037F)  # x87 FCW
    return bytes(page)


def launch_digest(args):
    """GCTX.LD: one SHA-256 over every LAUNCH_UPDATE_DATA / LAUNCH_UPDATE_VMSA plaintext."""
    h = sha256_file(args.firmware)
    if args.kernel and args.kernel_hashes:
        check_hash_area(args.firmware)
        cmdline = os.fsencode(args.cmdline) if args.cmdline is not None else None
        h.update(kernel_hash_table(args.kernel, args.initrd, cmdline))
    # Without kernel-hashes=on QEMU loads the kernel through fw_cfg, unmeasured.

    if args.policy & POLICY_ES:
        for page in vmsa_pages(args):
            h.update(page)
    return h.digest()


def vmsa_pages(args):
    """The VMSA pages in vCPU order: BSP first, then num_cpus - 1 identical AP pages."""
    n = args.num_cpus
    if n is None:
        raise UsageError("SEV-ES policy needs --num-cpus and VMSAs or --cpu-signature")
    if args.cpu_signature is not None:
        if args.vmsa_bsp or args.vmsa_ap:
            raise UsageError("--cpu-signature excludes --vmsa-bsp/--vmsa-ap")
        bsp = build_vmsa(BSP_EIP, args.cpu_signature, args.init2, args.sev_features)
        ap = (build_vmsa(ap_reset_address(args.firmware), args.cpu_signature, args.init2, args.sev_features)
              if n > 1 else None)
    else:
        if not args.vmsa_bsp or (n > 1 and not args.vmsa_ap):
            raise UsageError("SEV-ES needs --vmsa-bsp (and --vmsa-ap for >1 CPU) or --cpu-signature")
        bsp = read_exact(args.vmsa_bsp, PAGE, "VMSA file")
        ap = read_exact(args.vmsa_ap, PAGE, "VMSA file") if n > 1 else None
    return [bsp] + [ap] * (n - 1)


def measure_mac(tik, api_major, api_minor, build, policy, ld, mnonce):
    """LAUNCH_MEASURE HMAC: context 0x04 || version || policy || LD || MNONCE."""
    msg = struct.pack("<BBBBI", 0x04, api_major, api_minor, build, policy) + ld + mnonce
    return hmac.new(tik, msg, hashlib.sha256).digest()


def cmd_measure(args):
    if (args.initrd or args.cmdline is not None) and not args.kernel:
        raise UsageError("--initrd/--cmdline require --kernel")
    _, tik = load_keys(args, need_tek=False)
    if args.nonce_hex is not None:
        try:
            mnonce = bytes.fromhex(args.nonce_hex)
        except ValueError:
            raise UsageError("--nonce-hex is not hex")
        if len(mnonce) != 16:
            raise UsageError("--nonce-hex must be 16 bytes")
    else:
        mnonce = secrets.token_bytes(16)

    ld = launch_digest(args)
    if args.show_ld:
        print(f"LD {ld.hex()}", file=sys.stderr)
    mac = measure_mac(tik, args.api_major, args.api_minor, args.build_id, args.policy, ld, mnonce)
    print(base64.b64encode(mac + mnonce).decode())


# --------------------------------------------------------------------------------------------
# LAUNCH_SECRET


def secret_header_mac(tik, flags, iv, ciphertext, measure):
    n = len(ciphertext)
    msg = struct.pack("<BI", 0x01, flags) + iv + struct.pack("<II", n, n) + ciphertext + measure
    return hmac.new(tik, msg, hashlib.sha256).digest()


def parse_secret_table(plain):
    """Walk an EFI secret table; return [(guid_str, data)] or raise Failure.

    Stricter than OVMF/Linux on purpose: the tool under test must pad to the next multiple of
    16 only, with zeros, and write a total length that is either unpadded or padded.
    """
    if len(plain) < 20 or plain[:16] != GUID_SECRET_TABLE:
        raise Failure("secret table header GUID missing")
    (total,) = struct.unpack_from("<I", plain, 16)
    if not 20 <= total <= len(plain):
        raise Failure(f"secret table length {total} outside 20..{len(plain)}")

    entries, seen, pos = [], set(), 20
    while pos + 20 <= total:
        guid = plain[pos:pos + 16]
        if guid == bytes(16):
            break  # zero GUID: padding starts (the kernel driver skips these)
        (length,) = struct.unpack_from("<I", plain, pos + 16)
        if length < 20 or pos + length > total:
            raise Failure(f"secret entry at {pos} has bad length {length}")
        name = str(uuid.UUID(bytes_le=guid))
        if name in seen:
            raise Failure(f"duplicate secret GUID {name}")
        seen.add(name)
        entries.append((name, plain[pos + 20:pos + length]))
        pos += length

    unpadded = pos
    if total not in (unpadded, len(plain)):
        raise Failure(f"secret table length {total} is neither unpadded ({unpadded}) nor padded ({len(plain)})")
    if len(plain) - unpadded >= 16:
        raise Failure(f"secret table padded with {len(plain) - unpadded} bytes: a whole extra block")
    if any(plain[unpadded:]):
        raise Failure("secret table padding is not all zero")
    if not entries:
        raise Failure("secret table has no entries")
    return entries


def cmd_decrypt_secret(args):
    tek, tik = load_keys(args, need_tek=True)
    blob = b64_decode(args.measurement, "--measurement")
    if len(blob) != 48:
        raise UsageError(f"--measurement decodes to {len(blob)} bytes, expected 48")
    header = file_or_b64(args.header, "--header")
    payload = file_or_b64(args.payload, "--payload")
    if len(header) != SECRET_HDR_LEN:
        raise Failure(f"packet header is {len(header)} bytes, expected {SECRET_HDR_LEN}")

    flags, iv, mac = struct.unpack("<I16s32s", header)
    want = secret_header_mac(tik, flags, iv, payload, blob[:32])
    if not hmac.compare_digest(mac, want):
        raise Failure("packet header MAC does not verify (wrong TIK, measurement or payload)")
    if flags != 0:
        raise Failure(f"unsupported header flags {flags:#x} (compressed secrets are not used)")
    if not payload or len(payload) % 16:
        raise Failure(f"payload length {len(payload)} is not a positive multiple of 16")

    # The IV is the whole initial counter block, incremented as a 128-bit big-endian integer.
    dec = Cipher(algorithms.AES(tek), modes.CTR(iv)).decryptor()
    plain = dec.update(payload) + dec.finalize()
    entries = parse_secret_table(plain)
    for name, data in entries:
        print(f"{name} {data.hex()}")

    if args.expect:
        check_expected(entries, args.expect)


def check_expected(entries, expect_args):
    expected = {}
    for item in expect_args:
        name, sep, path = item.partition("=")  # paths may contain '=' or ':'
        try:
            name = str(uuid.UUID(name))
        except ValueError:
            raise UsageError(f"--expect {item!r}: not GUID=FILE")
        if not sep or not path:
            raise UsageError(f"--expect {item!r}: not GUID=FILE")
        try:
            with open(path, "rb") as f:
                expected[name] = f.read()
        except OSError as e:
            raise UsageError(f"cannot read {path!r}: {e.strerror}")

    got = dict(entries)
    problems = []
    for name, data in expected.items():
        if name not in got:
            problems.append(f"missing secret {name}")
        elif not hmac.compare_digest(got[name], data):
            problems.append(f"secret {name} differs from expected ({len(got[name])} vs {len(data)} bytes)")
    problems += [f"unexpected secret {name}" for name in got if name not in expected]
    if problems:
        raise Failure("; ".join(problems))


# --------------------------------------------------------------------------------------------


def build_parser():
    p = argparse.ArgumentParser(description="Simulated AMD SEV Secure Processor (tests only)")
    sub = p.add_subparsers(dest="command", required=True)

    def keys(sp, tek):
        sp.add_argument("--tik", help="16-byte TIK file")
        if tek:
            sp.add_argument("--tek", help="16-byte TEK file")
        sp.add_argument("--tk", help="32-byte file: TEK then TIK")

    m = sub.add_parser("measure", help="LAUNCH_MEASURE: print base64(MEASURE || MNONCE)")
    m.add_argument("--firmware", required=True)
    m.add_argument("--kernel")
    m.add_argument("--initrd")
    m.add_argument("--cmdline")
    m.add_argument("--kernel-hashes", action="store_true",
                   help="QEMU sev-guest kernel-hashes=on: measure the hash table of --kernel")
    m.add_argument("--policy", type=int_arg(0, 0xFFFFFFFF), required=True)
    m.add_argument("--api-major", type=int_arg(0, 255), required=True)
    m.add_argument("--api-minor", type=int_arg(0, 255), required=True)
    m.add_argument("--build-id", type=int_arg(0, 255), required=True)
    keys(m, tek=False)
    m.add_argument("--nonce-hex", help="16-byte MNONCE (default: random)")
    m.add_argument("--num-cpus", type=int_arg(1, 4096))
    m.add_argument("--vmsa-bsp", help="4096-byte VMSA of vCPU 0")
    m.add_argument("--vmsa-ap", help="4096-byte VMSA of the other vCPUs")
    m.add_argument("--cpu-signature", type=int_arg(0, 0xFFFFFFFF),
                   help="build the VMSAs for this CPUID(1).EAX (AP reset from the firmware)")
    m.add_argument("--sev-features", type=int_arg(0, 0xFFFFFFFFFFFFFFFF), default=0,
                   help="SEV_FEATURES of the built VMSAs (e.g. 0x20 DebugSwap)")
    m.add_argument("--init2", action="store_true",
                   help="built VMSAs as KVM_SEV_INIT2 makes them (MXCSR/FCW set); default legacy")
    m.add_argument("--show-ld", action="store_true", help="print 'LD <hex>' on stderr")
    m.set_defaults(func=cmd_measure)

    d = sub.add_parser("decrypt-secret", help="LAUNCH_SECRET: verify, decrypt, list secrets")
    keys(d, tek=True)
    d.add_argument("--measurement", required=True, help="base64 of the 48-byte measurement")
    d.add_argument("--header", required=True, help="file with base64, or base64 (52 bytes)")
    d.add_argument("--payload", required=True, help="file with base64, or base64")
    d.add_argument("--expect", action="append", metavar="GUID=FILE",
                   help="require exactly these secrets (repeatable)")
    d.set_defaults(func=cmd_decrypt_secret)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UsageError as e:
        print(f"sev_sp: error: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"sev_sp: FAIL: {e}", file=sys.stderr)
        return 1
    except Exception:
        # A bug in the simulator must not look like a verification failure (exit 1).
        traceback.print_exc()
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

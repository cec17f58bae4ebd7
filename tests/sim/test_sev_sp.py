#!/usr/bin/python3
"""Check the simulated SEV Secure Processor (sev_sp.py) against the public vectors.

The simulator is only worth trusting as an independent oracle if it reproduces every public
vector it can, so this runs it (mostly through its command line, as the tests and demos do)
on the sevctl / sev-snp-measure / sev-tool vectors in VECTORS.json.

Vectors folder: $SEV_VECTORS_DIR (relative to the current directory), default
/work/shared/vectors. Exit status is non-zero when any check fails.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "sev_sp.py")
VEC = os.path.abspath(os.environ.get("SEV_VECTORS_DIR", "/work/shared/vectors"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
import sev_sp  # noqa: E402  (unit-level checks of the pieces the CLI is built from)

if not os.path.isfile(os.path.join(VEC, "VECTORS.json")):
    sys.exit(f"vectors not found in {VEC} (set SEV_VECTORS_DIR)")

PASSED, FAILED = 0, []
TMP = tempfile.mkdtemp(prefix="test_sev_sp.")


def check(name, ok, detail=""):
    global PASSED
    if ok:
        PASSED += 1
    else:
        FAILED.append(name)
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))


def vpath(rel):
    return os.path.join(VEC, rel)


def run(*args):
    p = subprocess.run([sys.executable, SIM, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def tmpfile(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read(rel):
    with open(vpath(rel), "rb") as f:
        return f.read()


def ld_from_stderr(err):
    for line in err.splitlines():
        if line.startswith("LD "):
            return line[3:].strip()
    return None


with open(vpath("VECTORS.json")) as f:
    VECTORS = json.load(f)
EMPTY = tmpfile("empty", b"")
DUMMY_TIK = tmpfile("dummy_tik", bytes(range(16)))


# ---------------------------------------------------------------- LAUNCH_MEASURE (§8.3)


def measure_args(v, nonce):
    args = ["measure", "--firmware", vpath(v["firmware"]),
            "--policy", str(v["policy"]), "--api-major", str(v["api_major"]),
            "--api-minor", str(v["api_minor"]), "--build-id", str(v["build"]),
            "--tik", vpath(v["tik_file"]), "--nonce-hex", nonce.hex(), "--show-ld"]
    if "kernel" in v:
        args += ["--kernel-hashes", "--kernel", vpath(v["kernel"])]
        if v.get("initrd"):
            args += ["--initrd", vpath(v["initrd"])]
        if v.get("cmdline") is not None:
            args += ["--cmdline", v["cmdline"]]
    return args


def test_launch_measure():
    for i, v in enumerate(VECTORS["sev_launch_measure"]):
        name = f"sev_launch_measure[{i}] {v['source']}"
        expected = v.get("expected_blob_b64")
        if "nonce_b64" in v:
            nonce = base64.b64decode(v["nonce_b64"])
        elif expected:
            nonce = base64.b64decode(expected)[32:]  # "last 16 bytes of expected blob"
        else:
            nonce = bytes.fromhex(v["mnonce_hex"])

        if "firmware" in v:
            args = measure_args(v, nonce)
            if "num_cpus" in v:
                args += ["--num-cpus", str(v["num_cpus"]),
                         "--vmsa-bsp", vpath(v["vmsa_cpu0"]), "--vmsa-ap", vpath(v["vmsa_cpu1"])]
            rc, out, err = run(*args)
            check(name, rc == 0 and out.strip() == expected, f"rc={rc} out={out.strip()} err={err}")
            if "intermediate_ld_hex" in v:
                check(name + " LD", ld_from_stderr(err) == v["intermediate_ld_hex"], err)
            if "num_cpus" in v:
                # Same vector with the simulator building the legacy VMSAs itself from the
                # EPYC-Milan signature and the AP reset address in the firmware footer.
                args = measure_args(v, nonce) + ["--num-cpus", str(v["num_cpus"]),
                                                 "--cpu-signature", "0xA00F11"]
                rc, out, err = run(*args)
                check(name + " (--cpu-signature)", rc == 0 and out.strip() == expected,
                      f"rc={rc} out={out.strip()} err={err}")
        elif "launch_digest_b64" in v or "ld_hex" in v:
            # No firmware to hash: check the HMAC step on the given LD.
            ld = (base64.b64decode(v["launch_digest_b64"]) if "launch_digest_b64" in v
                  else bytes.fromhex(v["ld_hex"]))
            tik = read(v["tik_file"]) if "tik_file" in v else bytes.fromhex(v["tik_hex"])
            mac = sev_sp.measure_mac(tik, v["api_major"], v["api_minor"], v["build"],
                                     v["policy"], ld, nonce)
            if expected:
                check(name, base64.b64encode(mac + nonce).decode() == expected)
            else:
                check(name, mac.hex() == v["expected_measure_hex"], mac.hex())
        else:
            check(name, False, "vector shape not understood")


# ---------------------------------------------------------------- VMSA (§5)


def test_vmsa():
    fw = vpath("sevctl/OVMF.amdsev.fd_trimmed_edk2-ovmf-20220126gitbb1bba3d77-4.el9")
    reset = sev_sp.ap_reset_address(fw)
    check("sevctl firmware AP reset 0x80B004", reset == 0x80B004, hex(reset))
    check("legacy VMSA BSP == sevctl vmsa0.bin",
          sev_sp.build_vmsa(0xFFFFFFF0, 0xA00F11) == read("sevctl/vmsa0.bin"))
    check("legacy VMSA AP == sevctl vmsa1.bin",
          sev_sp.build_vmsa(0x80B004, 0xA00F11) == read("sevctl/vmsa1.bin"))
    # Page digests stated in measurement.md §5 (EPYC-v4, AP eip 0x80B004).
    for init2, bsp, ap in (
        (True, "8295cef559b57130391d59605890ef93297720b48bef9a8c3c985b9c3fb0788c",
         "7ff723da33f39dedbe8336bb697e0a2f76471690074d5902e1a8177cd5312c95"),
        (False, "30a76bd1aa5adf81f02832d38c21e31b073cf0663dd2337455db2a3c210666af",
         "3d1cd8f98c320cb09405dae226a8bd6e18d8bfc0b4babda508c10963a6f3df19"),
    ):
        for eip, want in ((0xFFFFFFF0, bsp), (0x80B004, ap)):
            got = hashlib.sha256(sev_sp.build_vmsa(eip, 0x800F12, init2)).hexdigest()
            check(f"VMSA page digest init2={init2} eip={eip:#x}", got == want, got)


# ---------------------------------------------------------------- launch digests (§8.1/§8.2)


def test_launch_digests():
    """SEV / SEV-ES LDs through the CLI (--show-ld); SNP ones are out of scope here."""
    for i, v in enumerate(VECTORS["launch_digests"]):
        mode = v["mode"]
        if not (mode == "sev" or mode.startswith("seves")):
            continue
        es = mode.startswith("seves")
        args = ["measure", "--firmware", vpath(v["ovmf"]), "--policy", "5" if es else "1",
                "--api-major", "1", "--api-minor", "55", "--build-id", "1",
                "--tik", DUMMY_TIK, "--show-ld"]
        if "kernel" in v:
            args += ["--kernel-hashes", "--kernel", vpath(v["kernel"]) if v["kernel"] else EMPTY]
            if v.get("initrd") is not None:
                args += ["--initrd", vpath(v["initrd"]) if v["initrd"] else EMPTY]
            if v.get("append") is not None:
                args += ["--cmdline", v["append"]]
        if es:
            args += ["--num-cpus", str(v["vcpus"]), "--cpu-signature", v["vcpu_sig"]]
            if "legacy" not in mode:
                args.append("--init2")
        rc, _, err = run(*args)
        check(f"launch_digests[{i}] {mode} {v['ovmf']}",
              rc == 0 and ld_from_stderr(err) == v["expected"], f"rc={rc} {err}")


# ---------------------------------------------------------------- measure behaviour


def base_measure(fw, extra=()):
    return ["measure", "--firmware", fw, "--policy", "1", "--api-major", "1",
            "--api-minor", "55", "--build-id", "1", "--show-ld", *extra]


def test_measure_behaviour():
    fw = vpath("sevctl/OVMF.amdsev.fd_trimmed_edk2-ovmf-20220126gitbb1bba3d77-4.el9")
    fw_hash = hashlib.sha256(read(fw)).hexdigest()

    rc1, out1, _ = run(*base_measure(fw, ["--tik", DUMMY_TIK]))
    rc2, out2, _ = run(*base_measure(fw, ["--tik", DUMMY_TIK]))
    blob1 = base64.b64decode(out1) if rc1 == 0 else b""
    check("random nonce: 48-byte blob", len(blob1) == 48, out1)
    check("random nonce differs between runs", rc2 == 0 and out1 != out2)

    tk = tmpfile("tk", bytes(16) + bytes(range(16)))  # TEK || TIK
    n = "00" * 16
    _, a, _ = run(*base_measure(fw, ["--tik", DUMMY_TIK, "--nonce-hex", n]))
    rc, b, _ = run(*base_measure(fw, ["--tk", tk, "--nonce-hex", n]))
    check("--tk uses its second half as TIK", rc == 0 and a == b, b)

    # Without kernel-hashes QEMU does not measure the kernel.
    rc, _, err = run(*base_measure(fw, ["--tik", DUMMY_TIK, "--kernel", EMPTY]))
    check("--kernel without --kernel-hashes is unmeasured", rc == 0 and ld_from_stderr(err) == fw_hash, err)
    # VMSA options are ignored for a non-ES policy.
    rc, _, err = run(*base_measure(fw, ["--tik", DUMMY_TIK, "--num-cpus", "2", "--cpu-signature", "0x800f12"]))
    check("VMSAs not measured without policy ES", rc == 0 and ld_from_stderr(err) == fw_hash, err)

    x64 = vpath("sev-snp-measure/ovmf_OvmfX64_suffix.bin")
    rc, _, err = run(*base_measure(x64, ["--tik", DUMMY_TIK, "--kernel-hashes", "--kernel", EMPTY]))
    check("kernel hashes refused without firmware hash area", rc == 1, f"rc={rc} {err}")

    for label, extra in (
        ("TIK of wrong size", ["--tik", EMPTY]),
        ("bad nonce length", ["--tik", DUMMY_TIK, "--nonce-hex", "00"]),
        ("policy out of range", ["--tik", DUMMY_TIK, "--policy", str(1 << 32)]),
        ("ES without CPUs", ["--tik", DUMMY_TIK, "--policy", "5"]),
        ("ES AP VMSA missing", ["--tik", DUMMY_TIK, "--policy", "5", "--num-cpus", "2",
                                "--vmsa-bsp", vpath("sevctl/vmsa0.bin")]),
        ("--initrd without --kernel", ["--tik", DUMMY_TIK, "--initrd", EMPTY]),
        ("no key", []),
    ):
        rc, _, err = run(*base_measure(fw, extra))
        check(f"measure usage error: {label}", rc == 2, f"rc={rc} {err}")


# ---------------------------------------------------------------- LAUNCH_SECRET (§8.4)


def pack_secret(tek, tik, iv, plain, measure):
    """Test-side packer (not the simulator's code) to build packets with crafted tables."""
    enc = Cipher(algorithms.AES(tek), modes.CTR(iv)).encryptor()
    ct = enc.update(plain) + enc.finalize()
    n = len(ct)
    mac = hmac.new(tik, b"\x01" + struct.pack("<I", 0) + iv + struct.pack("<II", n, n) + ct + measure,
                   hashlib.sha256).digest()
    return (base64.b64encode(struct.pack("<I", 0) + iv + mac).decode(),
            base64.b64encode(ct).decode())


def table(entries, total=None, pad=None):
    """Secret table bytes; total/pad override the length field and padding for bad cases."""
    body = b"".join(uuid.UUID(g).bytes_le + struct.pack("<I", 20 + len(d)) + d for g, d in entries)
    n = 20 + len(body)
    out = sev_sp.GUID_SECRET_TABLE + struct.pack("<I", n if total is None else total) + body
    return out + (pad if pad is not None else bytes(-n % 16))


def test_launch_secret():
    tek, tik = read("sevctl/secret_tek1.bin"), read("sevctl/secret_tik1.bin")
    tk = tmpfile("secret_tk", tek + tik)
    for i, v in enumerate(VECTORS["launch_secret"]):
        name = f"launch_secret[{i}]"
        expected_lines = [f"{g} {read(p).hex()}" for g, p in v["secrets"]]
        hdr = tmpfile(f"hdr{i}", v["expected_header_b64"].encode() + b"\n")
        pay = tmpfile(f"pay{i}", v["expected_payload_b64"].encode() + b"\n")
        keys = ["--tik", vpath(v["tik_file"]), "--tek", vpath(v["tek_file"])]
        expects = [a for g, p in v["secrets"] for a in ("--expect", f"{g}={vpath(p)}")]
        common = ["decrypt-secret", "--measurement", v["launch_measure_blob_b64"]]

        rc, out, err = run(*common, *keys, "--header", hdr, "--payload", pay, *expects)
        check(name + " files + --expect", rc == 0 and out.splitlines() == expected_lines,
              f"rc={rc} out={out!r} err={err}")
        rc, out, err = run(*common, "--tk", tk, "--header", v["expected_header_b64"],
                           "--payload", v["expected_payload_b64"])
        check(name + " base64 args + --tk", rc == 0 and out.splitlines() == expected_lines,
              f"rc={rc} out={out!r} err={err}")

        # The test packer must itself reproduce the vector before it is used for bad cases.
        iv = base64.b64decode(v["iv_b64"])
        measure = base64.b64decode(v["launch_measure_blob_b64"])[:32]
        plain = bytes.fromhex(v["table_hex"])
        check(name + " test packer reproduces vector",
              pack_secret(tek, tik, iv, plain, measure) == (v["expected_header_b64"], v["expected_payload_b64"]))
        check(name + " table_hex parses", [f"{g} {d.hex()}" for g, d in sev_sp.parse_secret_table(plain)]
              == expected_lines)

    v = VECTORS["launch_secret"][1]
    blob_b64 = v["launch_measure_blob_b64"]
    keys = ["--tik", vpath(v["tik_file"]), "--tek", vpath(v["tek_file"])]
    (g1, f1), (g2, f2) = v["secrets"]
    hdr, pay = v["expected_header_b64"], v["expected_payload_b64"]

    def dec(h, p, *extra, blob=blob_b64):
        return run("decrypt-secret", *keys, "--measurement", blob, "--header", h, "--payload", p, *extra)[0]

    def flip(b64, pos):
        raw = bytearray(base64.b64decode(b64))
        raw[pos] ^= 1
        return base64.b64encode(bytes(raw)).decode()

    other_blob = base64.b64encode(bytes(48)).decode()
    check("bad MAC byte -> 1", dec(flip(hdr, 40), pay) == 1)
    check("tampered payload -> 1", dec(hdr, flip(pay, 5)) == 1)
    check("tampered IV -> 1", dec(flip(hdr, 4), pay) == 1)
    check("other measurement -> 1", dec(hdr, pay, blob=other_blob) == 1)
    check("--expect wrong data -> 1", dec(hdr, pay, "--expect", f"{g1}={vpath(f2)}",
                                          "--expect", f"{g2}={vpath(f2)}") == 1)
    check("--expect extra entry -> 1", dec(hdr, pay, "--expect", f"{g1}={vpath(f1)}") == 1)
    check("--expect missing entry -> 1", dec(hdr, pay, "--expect", f"{g1}={vpath(f1)}",
                                             "--expect", f"{g2}={vpath(f2)}",
                                             "--expect", f"00000000-1111-2222-3333-444444444444={vpath(f1)}") == 1)
    check("measurement of 32 bytes -> 2", dec(hdr, pay, blob=base64.b64encode(bytes(32)).decode()) == 2)
    check("payload not base64 -> 2", dec(hdr, "@@@@") == 2)
    check("short header -> 1", dec(base64.b64encode(bytes(51)).decode(), pay) == 1)

    # Crafted tables, each correctly MACed, so only the table checks can reject them.
    tek, tik = read(v["tek_file"]), read(v["tik_file"])
    measure = base64.b64decode(blob_b64)[:32]
    iv = bytes(range(16))
    s1 = read(f1)
    aligned = [(g1, b"x" * 12)]  # 20 + 20 + 12 = 52 -> pads to 64; 20+20+24=64 is aligned
    aligned64 = [(g1, b"y" * 24)]
    cases = (
        ("sevctl form (unpadded total)", table([(g1, s1)]), 0),
        ("padded total length accepted", table([(g1, s1)], total=64), 0),
        ("already aligned, no padding", table(aligned64), 0),
        ("libvirt bug: whole extra zero block", table(aligned64, pad=bytes(16)), 1),
        ("extra zero block after padding", table(aligned) + bytes(16), 1),
        ("non-zero padding", table(aligned, pad=b"\0" * 11 + b"\1"), 1),
        ("total length past end", table(aligned, total=100), 1),
        ("total length inside an entry", table(aligned, total=45), 1),
        ("total length neither unpadded nor padded", table(aligned, total=58), 1),
        ("wrong header GUID", uuid.UUID(g1).bytes_le + table(aligned)[16:], 1),
        ("payload not multiple of 16", table(aligned)[:60], 1),
    )
    for label, plain, want in cases:
        h, p = pack_secret(tek, tik, iv, plain, measure)
        rc = dec(h, p)
        check(f"table: {label} -> {want}", rc == want, f"rc={rc}")


def main():
    try:
        for test in (test_launch_measure, test_vmsa, test_launch_digests,
                     test_measure_behaviour, test_launch_secret):
            test()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{PASSED} passed, {len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

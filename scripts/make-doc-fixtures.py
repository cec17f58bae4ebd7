#!/usr/bin/env python3
"""Makes the small fixtures the library's documentation examples run on
(tests/fixtures/), each from an implementation other than the library:

- ovmf-snp-4k.bin: a 4 KiB firmware tail laid out as edk2's OVMF ResetVector
  lays out its footer table and SEV metadata (written here from the layout
  in the OVMF sources, with sections like the AmdSevX64 build's); its code
  area is a fixed text, not firmware. Its SNP launch digest for one
  EPYC-Milan vCPU is sev-snp-measure's.
- snp-sim/: a test ARK, ASK and VCEK and a version 3 attestation report
  signed by the simulated SNP firmware (tests/sim/snp_sp.py,
  python3-cryptography), whose MEASUREMENT is that digest and whose
  REPORT_DATA is a fixed nonce.
- id-key.pem, author-key.pem: P-384 test ID and author keys (openssl);
  sev-snp-measure's snp-create-id-block gives their key digests.

It prints the values the examples assert. Run from the checkout's root, after
scripts/setup.sh: python3 scripts/make-doc-fixtures.py
"""
import base64
import json
import os
import pathlib
import shutil
import struct
import subprocess
import tempfile
import uuid

OUT = pathlib.Path("tests/fixtures")
MEASURE = "/opt/sev-snp-measure/bin/sev-snp-measure"
ID_BLOCK = "/opt/sev-snp-measure/bin/snp-create-id-block"
NONCE = (b"virt-qemu-sev-validate example nonce").ljust(64, b"\0")


def guid_le(text):
    return uuid.UUID(text).bytes_le


FOOTER = guid_le("96b582de-1fb2-45f7-baea-a366c55a082d")
RESET_BLOCK = guid_le("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
SECRET_BLOCK = guid_le("4c2eb361-7d9b-4cc3-8081-127c90d3d294")
HASH_AREA = guid_le("7255371f-3a3b-4b04-927b-1da6efa8d454")
METADATA = guid_le("dc886566-984a-4798-a75e-5585a7bf67cc")

SECTIONS = [  # (gpa, size, type): SNP_SEC_MEM 1, SECRETS 2, CPUID 3, SVSM_CAA 4, KERNEL_HASHES 0x10
    (0x800000, 0x9000, 1), (0x80A000, 0x3000, 1), (0x80D000, 0x1000, 2),
    (0x80E000, 0x1000, 3), (0x80F000, 0x1000, 4), (0x810000, 0x1000, 0x10),
    (0x811000, 0xF000, 1),
]


def ovmf_tail():
    size = 4096
    image = bytearray((b"synthetic OVMF tail for virt-qemu-sev-validate examples; not firmware. " * 64)[:size])
    # The SEV metadata: "ASEV", length, version 1, count, then the sections.
    meta = b"ASEV" + struct.pack("<III", 16 + 12 * len(SECTIONS), 1, len(SECTIONS))
    meta += b"".join(struct.pack("<III", *s) for s in SECTIONS)
    meta_at = 0x400
    image[meta_at:meta_at + len(meta)] = meta
    # The footer table: entries (data, u16 len, GUID) walked backwards from
    # end - 50, then the footer's own u16 length and GUID at end - 50 .. - 32.
    entries = [
        (struct.pack("<I", size - meta_at), METADATA),
        (struct.pack("<II", 0x810C00, 0x400), HASH_AREA),
        (struct.pack("<II", 0x810000, 0xC00), SECRET_BLOCK),
        (struct.pack("<I", 0x0080B004), RESET_BLOCK),
    ]
    table = b"".join(d + struct.pack("<H", len(d) + 18) + g for d, g in entries)
    table += struct.pack("<H", len(table) + 18) + FOOTER
    end = size - 32
    image[end - len(table):end] = table
    image[end:] = b"\0" * 32
    return bytes(image)


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    ovmf = OUT / "ovmf-snp-4k.bin"
    ovmf.write_bytes(ovmf_tail())
    ld = run([MEASURE, "--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-Milan",
              "--ovmf", str(ovmf), "--output-format", "hex"]).strip()
    sim = OUT / "snp-sim"
    with tempfile.TemporaryDirectory() as tmp:
        chain = pathlib.Path(tmp) / "chain"
        run(["/usr/bin/python3", "tests/sim/snp_sp.py", "chain", "--product", "milan",
             "--out", str(chain), "--keys", str(pathlib.Path(tmp) / "keys"),
             "--not-before", "2026-01-01T00:00:00", "--vcek-years", "7"])
        report = pathlib.Path(tmp) / "report.bin"
        run(["/usr/bin/python3", "tests/sim/snp_sp.py", "report", "--chain", str(chain),
             "--out", str(report), "--version", "3", "--report-data", NONCE.hex(),
             "--measurement", ld])
        sim.mkdir(exist_ok=True)
        for name in ("ark.pem", "ask.pem", "vcek.der"):
            shutil.copy(chain / name, sim / name)
        shutil.copy(report, sim / "report.bin")
    keys = [OUT / "id-key.pem", OUT / "author-key.pem"]
    for key in keys:
        if not key.exists():
            pem = run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"])
            key.write_text(pem)
    out = run([ID_BLOCK, "--measurement", base64.b64encode(bytes.fromhex(ld)).decode(),
               "--idkey", str(keys[0]), "--authorkey", str(keys[1])])
    said = dict(l.split(":", 1) for l in out.splitlines() if ":" in l and "=" not in l.split(":", 1)[0])
    print(json.dumps({
        "snp_launch_digest": ld,
        "report_data": NONCE.hex(),
        "id_key_digest": base64.b64decode(said["id_key_hash"].strip()).hex(),
        "author_key_digest": base64.b64decode(said["author_key"].strip()).hex(),
    }, indent=2))


if __name__ == "__main__":
    main()

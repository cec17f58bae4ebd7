#!/usr/bin/python3
"""A simulated AMD Secure Processor, SEV-SNP signing side: the test oracle for SNP attestation.

Written from the spec (shared/spec/snp-attestation.md §1-§2) with python3-cryptography only. It
does not import or call virt-qemu-sev-validate: the Rust tests compare the tool against it.

  snp_sp.py chain --product {milan,genoa,turin} --out DIR [--keys DIR] [TCB, chip, validity ...]
      a test ARK (RSA-4096, self-signed) -> ASK and ASVK (RSA-4096) -> VCEK and VLEK (ECDSA
      P-384), every signature RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48, names, serials,
      validity and AMD extensions encoded the way AMD's real certificates encode them. Writes
      ark.pem ask.pem asvk.pem vcek.der vcek.pem vlek.der vlek.pem, the keys (*.key, PKCS#8
      PEM), cert_chain.pem (ASK then ARK, as KDS serves it), vlek_cert_chain.pem and chain.json.
      RSA-4096 keys take seconds to make: --keys DIR keeps them (per product) for the next run;
      the VCEK and VLEK keys are new in every chain.
  snp_sp.py report --chain DIR [--signer vcek|vlek] [field options] [launch options] --out FILE
      an ATTESTATION_REPORT (v2, v3 or v5 layout) signed with the VCEK or VLEK. Every field can
      be set; TCBs, CHIP_ID and CPUID default to the chain's. With --ovmf the MEASUREMENT is
      computed by sev-snp-measure from the launch options. --container picks raw (1184 bytes),
      ioctl (the SNP_GET_REPORT response, report at +0x20) or certs (report then cert table).
  snp_sp.py certtable --chain DIR [--signer vcek|vlek] [--malformed KIND] --out FILE
      a GHCB certificate table (configfs-tsm auxblob / SNP_GET_EXT_REPORT pages), or a broken
      one (overlapping blobs, offsets out of range or into the entries, no terminator, ...).
  snp_sp.py measure [launch options]
      prints the MEASUREMENT (hex) sev-snp-measure computes for the launch.
  snp_sp.py decode FILE        prints a report's fields as JSON (the form of EXPECTED.json)
  snp_sp.py verify FILE --vek CERT   checks a report's signature with a VCEK/VLEK
  snp_sp.py check FILE --vek CERT --roots PEM [--now T]
      every verdict of §2 (signature, chain, TCB and chip-ID binding, reserved bytes, committed
      TCB, DEBUG, VEK validity) and the VEK's fields, as JSON: an oracle for the tool's verdicts
"""

import argparse
import datetime
import hashlib
import json
import os
import struct
import subprocess
import sys
import uuid
import warnings

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)
from cryptography.utils import CryptographyDeprecationWarning

# AMD's VCEKs have serial 0, which cryptography warns about; they are what real hosts hand out.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)

SEV_SNP_MEASURE = os.environ.get("SEV_SNP_MEASURE", "/opt/sev-snp-measure/bin/sev-snp-measure")

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
AMD_OID = "1.3.6.1.4.1.3704.1."

# §2.1: serials per product and role; §1.5: CPUID (family, model, stepping) per product. The
# CA validity starts are AMD's (25 years from these), so minted roots span the same periods.
D = datetime.datetime
PRODUCTS = {
    "milan": {"name": "Milan", "serial": {"ark": 0x10000, "ask": 0x10001, "asvk": 0x10101},
              "ca_from": {"ark": D(2020, 10, 22, 17, 23, 5), "ask": D(2020, 10, 22, 18, 24, 20),
                          "asvk": D(2022, 11, 16, 22, 45, 24)},
              "cpuid": (0x19, 0x01, 0x01), "vcek_product": "Milan-B0", "turin_layout": False},
    "genoa": {"name": "Genoa", "serial": {"ark": 0x20000, "ask": 0x20002, "asvk": 0x20101},
              "ca_from": {"ark": D(2022, 1, 26, 15, 34, 37), "ask": D(2022, 10, 31, 13, 33, 48),
                          "asvk": D(2022, 11, 18, 20, 48, 34)},
              "cpuid": (0x19, 0x11, 0x01), "vcek_product": "Genoa", "turin_layout": False},
    "turin": {"name": "Turin", "serial": {"ark": 0x30000, "ask": 0x30001, "asvk": 0x30101},
              "ca_from": {"ark": D(2023, 5, 15, 20, 3, 12), "ask": D(2023, 5, 15, 20, 25, 21),
                          "asvk": D(2023, 5, 15, 21, 9, 41)},
              "cpuid": (0x1A, 0x02, 0x01), "vcek_product": "Turin", "turin_layout": True},
}

# §2.4, RFC-4122 byte order.
GUID_ARK = uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae")
GUID_ASK = uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782")
GUID_VCEK = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd")
GUID_VLEK = uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1")
GUID_NAMES = {GUID_ARK: "ark", GUID_ASK: "ask", GUID_VCEK: "vcek", GUID_VLEK: "vlek"}

# ---------------------------------------------------------------------------------------------
# DER, just what AMD's certificates use.


def der(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def der_seq(*items):
    return der(0x30, b"".join(items))


def der_int(v):
    if v == 0:
        return der(0x02, b"\x00")
    b = v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True)
    return der(0x02, b)


def der_oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, out)


def der_time(t):
    if t.year < 2050:
        return der(0x17, t.strftime("%y%m%d%H%M%SZ").encode())
    return der(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


def der_parse(data, off=0):
    """(tag, header length, content length) of the element at off."""
    tag, first = data[off], data[off + 1]
    if first < 0x80:
        return tag, 2, first
    n = first & 0x7F
    return tag, 2 + n, int.from_bytes(data[off + 2:off + 2 + n], "big")


def der_children(data):
    """The top-level elements inside one constructed element's content."""
    out, off = [], 0
    while off < len(data):
        _, hl, cl = der_parse(data, off)
        out.append(data[off:off + hl + cl])
        off += hl + cl
    return out


def der_content(elem):
    _, hl, cl = der_parse(elem)
    return elem[hl:hl + cl]


OID_SHA384 = "2.16.840.1.101.3.4.2.2"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_PSS = "1.2.840.113549.1.1.10"


def pss_algid(trailer):
    """RSASSA-PSS AlgorithmIdentifier, SHA-384, MGF1-SHA-384, salt 48. AMD's ARK/ASK (and VCEKs
    before 2024) also spell out the DEFAULT trailerField 1."""
    sha384 = der_seq(der_oid(OID_SHA384), der(0x05, b""))
    params = der(0xA0, sha384) + der(0xA1, der_seq(der_oid(OID_MGF1), sha384)) + \
        der(0xA2, der_int(48))
    if trailer:
        params += der(0xA3, der_int(1))
    return der_seq(der_oid(OID_PSS), der_seq(params))


def amd_name(cn):
    """OU, C, L, ST, O, CN: UTF8String except the PrintableString country, one RDN each."""
    def rdn(oid, tag, value):
        return der(0x31, der_seq(der_oid(oid), der(tag, value.encode())))
    return der_seq(rdn("2.5.4.11", 0x0C, "Engineering"), rdn("2.5.4.6", 0x13, "US"),
                   rdn("2.5.4.7", 0x0C, "Santa Clara"), rdn("2.5.4.8", 0x0C, "CA"),
                   rdn("2.5.4.10", 0x0C, "Advanced Micro Devices"), rdn("2.5.4.3", 0x0C, cn))


def extension(oid, value, critical=False):
    return der_seq(der_oid(oid), *( [der(0x01, b"\xff")] if critical else []), der(0x04, value))


def spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key):
    """RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING contents."""
    bits = der_children(der_content(spki(public_key)))[1]
    return hashlib.sha1(der_content(bits)[1:]).digest()


def add_years(t, years):
    try:
        return t.replace(year=t.year + years)
    except ValueError:  # 29 February
        return t.replace(year=t.year + years, day=28)


def make_cert(serial, issuer_cn, subject_cn, not_before, years, public_key, extensions,
              signing_key, trailer):
    algid = pss_algid(trailer)
    tbs = der_seq(der(0xA0, der_int(2)), der_int(serial), algid, amd_name(issuer_cn),
                  der_seq(der_time(not_before),
                          der_time(add_years(not_before, years))),
                  amd_name(subject_cn), spki(public_key),
                  der(0xA3, der_seq(*extensions)))
    sig = signing_key.sign(tbs, padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384())
    return der_seq(tbs, algid, der(0x03, b"\x00" + sig))


def ca_extensions(role, product, public_key, ark_key):
    """The ARK, ASK and ASVK extensions in AMD's order (§2.1, real cert_chain files)."""
    kind = "vlek" if role == "asvk" else "vcek"
    crl = f"https://kdsintf.amd.com/{kind}/v1/{product}/crl"
    crl_dp = der_seq(der_seq(der(0xA0, der(0xA0, der(0x86, crl.encode())))))
    ski = extension("2.5.29.14", der(0x04, key_id(public_key)))
    if role == "ark":
        return [extension("2.5.29.15", der(0x03, b"\x01\x06"), critical=True), ski,
                extension("2.5.29.19", der_seq(der(0x01, b"\xff")), critical=True),
                extension("2.5.29.31", crl_dp)]
    aki = extension("2.5.29.35", der_seq(der(0x80, key_id(ark_key))))
    return [ski, aki, extension("2.5.29.19", der_seq(der(0x01, b"\xff"), der_int(0)),
                                critical=True),
            extension("2.5.29.15", der(0x03, b"\x02\x04"), critical=True),
            extension("2.5.29.31", crl_dp)]


def vek_extensions(turin_layout, product_name, tcb, hwid=None, csp_id=None, hwid_der=False):
    """§2.2, in the order real VCEKs/VLEKs carry them. Milan/Genoa (and VLEKs): structVersion 0,
    spl_4..7 present, snpSPL after spl_7. Turin: structVersion 1, fmcSPL first, no spl_4."""
    def i(v):
        return der_int(v)
    ext = [extension(AMD_OID + "1", i(1 if turin_layout else 0)),
           extension(AMD_OID + "2", der(0x16, product_name.encode()))]
    if turin_layout:
        ext += [extension(AMD_OID + "3.9", i(tcb["fmc"])),
                extension(AMD_OID + "3.1", i(tcb["bl"])),
                extension(AMD_OID + "3.2", i(tcb["tee"])),
                extension(AMD_OID + "3.3", i(tcb["snp"])),
                extension(AMD_OID + "3.5", i(0)), extension(AMD_OID + "3.6", i(0)),
                extension(AMD_OID + "3.7", i(0)),
                extension(AMD_OID + "3.8", i(tcb["ucode"]))]
    else:
        ext += [extension(AMD_OID + "3.1", i(tcb["bl"])),
                extension(AMD_OID + "3.2", i(tcb["tee"])),
                extension(AMD_OID + "3.4", i(0)), extension(AMD_OID + "3.5", i(0)),
                extension(AMD_OID + "3.6", i(0)), extension(AMD_OID + "3.7", i(0)),
                extension(AMD_OID + "3.3", i(tcb["snp"])),
                extension(AMD_OID + "3.8", i(tcb["ucode"]))]
    if hwid is not None:
        # Every real VCEK carries the hwid raw; the DER-wrapped form is for parser tests.
        ext.append(extension(AMD_OID + "4", der(0x04, hwid) if hwid_der else hwid))
    if csp_id is not None:
        ext.append(extension(AMD_OID + "5", der(0x16, csp_id.encode())))
    return ext


# ---------------------------------------------------------------------------------------------
# TCB_VERSION (§1.6)


def tcb_pack(tcb, turin_layout):
    b = bytearray(8)
    if turin_layout:
        b[0], b[1], b[2], b[3] = tcb.get("fmc", 0), tcb["bl"], tcb["tee"], tcb["snp"]
    else:
        b[0], b[1], b[6] = tcb["bl"], tcb["tee"], tcb["snp"]
    b[7] = tcb["ucode"]
    return int.from_bytes(b, "little")


def tcb_unpack(raw, turin_layout):
    b = raw.to_bytes(8, "little")
    if turin_layout:
        return {"bl": b[1], "tee": b[2], "snp": b[3], "ucode": b[7], "fmc": b[0],
                "raw": f"0x{raw:016x}"}
    return {"bl": b[0], "tee": b[1], "snp": b[6], "ucode": b[7], "raw": f"0x{raw:016x}"}


def parse_tcb(text, turin_layout):
    """A raw u64 (0x...) or 'bl=3,tee=0,snp=8,ucode=115[,fmc=1]'."""
    if "=" not in text:
        return int(text, 0)
    tcb = {"bl": 0, "tee": 0, "snp": 0, "ucode": 0, "fmc": 0}
    for part in text.split(","):
        k, v = part.split("=")
        if k.strip() not in tcb:
            raise ValueError(f"unknown TCB component {k!r}")
        tcb[k.strip()] = int(v, 0)
    return tcb_pack(tcb, turin_layout)


# ---------------------------------------------------------------------------------------------
# Chains


def load_or_make_key(path, make):
    if path and os.path.isfile(path):
        return serialization.load_pem_private_key(open(path, "rb").read(), None)
    key = make()
    if path:
        write_key(path, key)
    return key


def write_key(path, key):
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(pem)
    os.replace(tmp, path)


def pem(der_bytes):
    return x509.load_der_x509_certificate(der_bytes).public_bytes(serialization.Encoding.PEM)


def mint_chain(product, out, keys_dir=None, chip_id=None, tcb=None, vlek_tcb=None,
               not_before=None, vek_years=7, vlek_years=1, ca_years=25,
               product_name=None, csp_id="CN=sim.example", hwid_der=False, vek_trailer=False):
    """Mints the five certificates for `product` into `out`; returns chain.json's dict."""
    p = PRODUCTS[product]
    os.makedirs(out, exist_ok=True)
    if keys_dir:
        os.makedirs(keys_dir, exist_ok=True)

    def kpath(role):
        return os.path.join(keys_dir, f"{product}-{role}.key") if keys_dir else None

    def rsa_key():
        return rsa.generate_private_key(65537, 4096)

    ark = load_or_make_key(kpath("ark"), rsa_key)
    ask = load_or_make_key(kpath("ask"), rsa_key)
    asvk = load_or_make_key(kpath("asvk"), rsa_key)
    # Only the slow RSA keys are kept: like real chips, every chain of a product shares its
    # ARK/ASK/ASVK while each VCEK and VLEK has a key of its own, so another chain's VCEK
    # never verifies this chain's reports.
    vcek = ec.generate_private_key(ec.SECP384R1())
    vlek = ec.generate_private_key(ec.SECP384R1())

    hwid_len = 8 if p["turin_layout"] else 64
    if chip_id is None:
        chip_id = os.urandom(hwid_len)
    if len(chip_id) != hwid_len:
        raise ValueError(f"{p['name']} hwid is {hwid_len} bytes, got {len(chip_id)}")
    tcb = dict(tcb or {"bl": 3, "tee": 0, "snp": 8, "ucode": 115, "fmc": 1})
    if not p["turin_layout"]:
        tcb["fmc"] = 0
    vlek_tcb = dict(vlek_tcb or tcb)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0, tzinfo=None)
    nb = not_before or (now - datetime.timedelta(days=1))
    name = p["name"]

    ark_der = make_cert(p["serial"]["ark"], f"ARK-{name}", f"ARK-{name}", p["ca_from"]["ark"],
                        ca_years, ark.public_key(),
                        ca_extensions("ark", name, ark.public_key(), None), ark, trailer=True)
    ask_der = make_cert(p["serial"]["ask"], f"ARK-{name}", f"SEV-{name}", p["ca_from"]["ask"],
                        ca_years, ask.public_key(),
                        ca_extensions("ask", name, ask.public_key(), ark.public_key()),
                        ark, trailer=True)
    asvk_der = make_cert(p["serial"]["asvk"], f"ARK-{name}", f"SEV-VLEK-{name}",
                         p["ca_from"]["asvk"], ca_years,
                         asvk.public_key(),
                         ca_extensions("asvk", name, asvk.public_key(), ark.public_key()),
                         ark, trailer=True)
    vcek_der = make_cert(0, f"SEV-{name}", "SEV-VCEK", nb, vek_years, vcek.public_key(),
                         vek_extensions(p["turin_layout"], product_name or p["vcek_product"],
                                        tcb, hwid=chip_id, hwid_der=hwid_der),
                         ask, trailer=vek_trailer)
    # VLEKs seen carry the Milan-layout extensions and the product line only (§2.2).
    vlek_der = make_cert(0, f"SEV-VLEK-{name}", "SEV-VLEK", nb, vlek_years, vlek.public_key(),
                         vek_extensions(False, name, vlek_tcb, csp_id=csp_id), asvk,
                         trailer=vek_trailer)

    def write(fname, data):
        with open(os.path.join(out, fname), "wb") as f:
            f.write(data)

    write("ark.pem", pem(ark_der))
    write("ask.pem", pem(ask_der))
    write("asvk.pem", pem(asvk_der))
    write("vcek.der", vcek_der)
    write("vcek.pem", pem(vcek_der))
    write("vlek.der", vlek_der)
    write("vlek.pem", pem(vlek_der))
    write("cert_chain.pem", pem(ask_der) + pem(ark_der))
    write("vlek_cert_chain.pem", pem(asvk_der) + pem(ark_der))
    for role, key in (("ark", ark), ("ask", ask), ("asvk", asvk), ("vcek", vcek),
                      ("vlek", vlek)):
        write_key(os.path.join(out, f"{role}.key"), key)
    info = {"product": product, "chip_id": chip_id.hex(), "tcb": tcb, "vlek_tcb": vlek_tcb,
            "turin_layout": p["turin_layout"],
            "vcek_not_before": nb.isoformat() + "Z",
            "vcek_not_after": add_years(nb, vek_years).isoformat() + "Z",
            "vlek_not_after": add_years(nb, vlek_years).isoformat() + "Z"}
    write("chain.json", json.dumps(info, indent=1).encode())
    return info


def load_cert(path):
    data = open(path, "rb").read()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


# ---------------------------------------------------------------------------------------------
# Reports (§1.1)


def build_report(f):
    """The 1184-byte report with a zero signature, from a dict of field values."""
    r = bytearray(REPORT_SIZE)
    v = f["version"]
    struct.pack_into("<IIQ", r, 0x000, v, f["guest_svn"], f["policy"])
    r[0x010:0x020] = f["family_id"]
    r[0x020:0x030] = f["image_id"]
    struct.pack_into("<IIQQI", r, 0x030, f["vmpl"], f["sig_algo"], f["current_tcb"],
                     f["platform_info"], f["key_info"])
    r[0x050:0x090] = f["report_data"]
    r[0x090:0x0C0] = f["measurement"]
    r[0x0C0:0x0E0] = f["host_data"]
    r[0x0E0:0x110] = f["id_key_digest"]
    r[0x110:0x140] = f["author_key_digest"]
    r[0x140:0x160] = f["report_id"]
    r[0x160:0x180] = f["report_id_ma"]
    struct.pack_into("<Q", r, 0x180, f["reported_tcb"])
    if v >= 3:
        r[0x188], r[0x189], r[0x18A] = f["cpuid"]
    r[0x1A0:0x1E0] = f["chip_id"]
    struct.pack_into("<Q", r, 0x1E0, f["committed_tcb"])
    r[0x1E8:0x1EB] = bytes(reversed(f["current_version"]))  # build, minor, major
    r[0x1EC:0x1EF] = bytes(reversed(f["committed_version"]))
    struct.pack_into("<Q", r, 0x1F0, f["launch_tcb"])
    if v >= 5:
        struct.pack_into("<QQ", r, 0x1F8, f["launch_mit_vector"], f["current_mit_vector"])
    return r


def sign_report(report, key):
    """ECDSA P-384 over SHA-384(report[0:0x2A0]); R and S little-endian in 72-byte fields."""
    sig = key.sign(bytes(report[:SIGNED_SIZE]), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(sig)
    report[0x2A0:0x2E8] = r.to_bytes(72, "little")
    report[0x2E8:0x330] = s.to_bytes(72, "little")
    return report


def signature_der(report):
    """The report's signature as a DER ECDSA-Sig-Value (what openssl dgst -verify takes)."""
    r = int.from_bytes(report[0x2A0:0x2E8], "little")
    s = int.from_bytes(report[0x2E8:0x330], "little")
    return encode_dss_signature(r, s)


def verify_report(report, vek_cert):
    """True when the VEK's key signed report[0:0x2A0]."""
    try:
        vek_cert.public_key().verify(signature_der(report), bytes(report[:SIGNED_SIZE]),
                                     ec.ECDSA(hashes.SHA384()))
        return True
    except (InvalidSignature, ValueError):
        return False


def product_of(report):
    """§1.5: CPUID on v3+; on v2, a CHIP_ID with only 8 non-zero leading bytes is Turin, the
    rest is taken as Milan (v2 cannot tell Milan from Genoa)."""
    version = struct.unpack_from("<I", report, 0)[0]
    if version >= 3:
        fam, model = report[0x188], report[0x189]
        if fam == 0x19:
            return "Milan" if model <= 0x0F else "Genoa"
        if fam == 0x1A:
            return "Turin"
        return None
    chip = report[0x1A0:0x1E0]
    if any(chip) and not any(chip[8:]):
        return "Turin"
    return "Milan"


def decode_report(report):
    """Every field, in the form of snp-vectors/EXPECTED.json."""
    if len(report) != REPORT_SIZE:
        raise ValueError(f"a report is {REPORT_SIZE} bytes, got {len(report)}")
    u32 = lambda o: struct.unpack_from("<I", report, o)[0]  # noqa: E731
    u64 = lambda o: struct.unpack_from("<Q", report, o)[0]  # noqa: E731
    version = u32(0)
    product = product_of(report)
    turin = product == "Turin"
    key_info = u32(0x48)
    signing = (key_info >> 2) & 7
    out = {
        "version": version,
        "product": product,
        "guest_svn": u32(4),
        "policy": hex(u64(8)),
        "vmpl": u32(0x30),
        "sig_algo": u32(0x34),
        "platform_info": hex(u64(0x40)),
        "key_info": {"author_key_en": key_info & 1, "mask_chip_key": (key_info >> 1) & 1,
                     "signing_key": {0: "VCEK", 1: "VLEK", 7: "NONE"}.get(signing,
                                                                          f"reserved {signing}")},
        "cpuid_fam_mod_step": list(report[0x188:0x18B]) if version >= 3 else None,
        "current_tcb": tcb_unpack(u64(0x38), turin),
        "reported_tcb": tcb_unpack(u64(0x180), turin),
        "committed_tcb": tcb_unpack(u64(0x1E0), turin),
        "launch_tcb": tcb_unpack(u64(0x1F0), turin),
        "current_version": f"{report[0x1EA]}.{report[0x1E9]}.{report[0x1E8]}",
        "committed_version": f"{report[0x1EE]}.{report[0x1ED]}.{report[0x1EC]}",
        "launch_mit_vector": hex(u64(0x1F8)) if version >= 5 else "0x0",
        "current_mit_vector": hex(u64(0x200)) if version >= 5 else "0x0",
        "family_id": report[0x10:0x20].hex(),
        "image_id": report[0x20:0x30].hex(),
        "report_data": report[0x50:0x90].hex(),
        "measurement": report[0x90:0xC0].hex(),
        "host_data": report[0xC0:0xE0].hex(),
        "id_key_digest": report[0xE0:0x110].hex(),
        "author_key_digest": report[0x110:0x140].hex(),
        "report_id": report[0x140:0x160].hex(),
        "report_id_ma": report[0x160:0x180].hex(),
        "chip_id": report[0x1A0:0x1E0].hex(),
    }
    return out


def reserved_ranges(version):
    """The MBZ ranges of §1.1 for a report version."""
    ranges = [(0x04C, 0x050), (0x1EB, 0x1EC), (0x1EF, 0x1F0), (0x330, REPORT_SIZE)]
    ranges.append((0x18B, 0x1A0) if version >= 3 else (0x188, 0x1A0))
    ranges.append((0x208, 0x2A0) if version >= 5 else (0x1F8, 0x2A0))
    return ranges


# ---------------------------------------------------------------------------------------------
# Verifier side: the VEK's fields and the chain, TCB and chip-ID checks of §2, as an oracle for
# the tool's verdicts.

EXT_NAMES = {"1": "structVersion", "2": "productName", "3.1": "blSPL", "3.2": "teeSPL",
             "3.3": "snpSPL", "3.4": "spl3.4", "3.5": "spl3.5", "3.6": "spl3.6",
             "3.7": "spl3.7", "3.8": "ucodeSPL", "3.9": "fmcSPL", "4": "hwid", "5": "cspId"}


def der_integer_value(b):
    tag, hl, cl = der_parse(b)
    if tag != 0x02 or hl + cl != len(b):
        raise ValueError(f"not a DER INTEGER: {b.hex()}")
    return int.from_bytes(b[hl:], "big", signed=True)


def vek_fields(cert):
    """AMD extensions by name: integers, strings, the hwid raw (unwrapped if DER-wrapped)."""
    out = {}
    for e in cert.extensions:
        oid = e.oid.dotted_string
        if not oid.startswith(AMD_OID):
            continue
        key = EXT_NAMES.get(oid[len(AMD_OID):], oid)
        v = e.value.value
        if key == "hwid":
            if len(v) in (66, 10) and v[0] == 0x04 and v[1] == len(v) - 2:
                v = v[2:]
            out[key] = v.hex()
        elif key in ("productName", "cspId"):
            out[key] = der_content(v).decode()
        else:
            out[key] = der_integer_value(v)
    return out


def decode_vek(cert):
    """The VEK in the form of EXPECTED.json's "vek"."""
    cn = x509.oid.NameOID.COMMON_NAME
    utc = datetime.timezone.utc
    return {
        "subject_cn": cert.subject.get_attributes_for_oid(cn)[0].value,
        "issuer_cn": cert.issuer.get_attributes_for_oid(cn)[0].value,
        "serial": cert.serial_number,
        "not_before": cert.not_valid_before.replace(tzinfo=utc).isoformat(),
        "not_after": cert.not_valid_after.replace(tzinfo=utc).isoformat(),
        "extensions": vek_fields(cert),
        "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
    }


def pss_signed_by(cert, issuer):
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                   padding.PSS(padding.MGF1(hashes.SHA384()), 48),
                                   hashes.SHA384())
        return True
    except (InvalidSignature, ValueError, TypeError, AttributeError):
        return False


def check_report(report, vek, ask, ark, now=None):
    """The verdicts of EXPECTED.json's "checks" (the tamper check aside), plus vek_valid_at.
    chip_id_matches_hwid is left out where it does not apply: VLEK signer or masked CHIP_ID."""
    fields = decode_report(report)
    turin = fields["product"] == "Turin"
    ext = vek_fields(vek)
    reported = fields["reported_tcb"]
    want = {"bl": ext.get("blSPL"), "tee": ext.get("teeSPL"), "snp": ext.get("snpSPL"),
            "ucode": ext.get("ucodeSPL")}
    have = {k: reported[k] for k in want}
    if turin:
        want["fmc"], have["fmc"] = ext.get("fmcSPL"), reported["fmc"]
    checks = {
        "report_signature_ok": verify_report(report, vek),
        "vek_signed_by_ask": pss_signed_by(vek, ask),
        "ask_signed_by_ark": pss_signed_by(ask, ark),
        "ark_self_signed": pss_signed_by(ark, ark),
        "reported_tcb_equals_vek_tcb": want == have,
    }
    chip = bytes.fromhex(fields["chip_id"])
    if fields["key_info"]["signing_key"] == "VCEK" and any(chip):
        hwid = bytes.fromhex(ext.get("hwid", ""))
        checks["chip_id_matches_hwid"] = bool(hwid) and chip == hwid.ljust(64, b"\0")
    checks["reserved_zero"] = not any(any(report[lo:hi])
                                      for lo, hi in reserved_ranges(fields["version"]))
    checks["committed_equals_current"] = (
        fields["committed_tcb"] == fields["current_tcb"]
        and fields["committed_version"] == fields["current_version"])
    checks["debug_policy_bit19"] = bool(int(fields["policy"], 16) >> 19 & 1)
    if now is not None:
        checks["vek_valid_at"] = vek.not_valid_before <= now <= vek.not_valid_after
    return checks


# ---------------------------------------------------------------------------------------------
# Containers (§1.2, §2.4)


def ioctl_response(report, status=0):
    """SNP_GET_REPORT's snp_report_resp.data[4000]: status, report size, 24 reserved, report."""
    out = bytearray(4000)
    struct.pack_into("<II", out, 0, status, len(report))
    out[0x20:0x20 + len(report)] = report
    return bytes(out)


def cert_table(entries):
    """GHCB cert table: {guid, offset, length} entries, an all-zero one, then the blobs;
    offsets count from the start of the table."""
    off = 24 * (len(entries) + 1)
    head, blobs = b"", b""
    for guid, blob in entries:
        head += guid.bytes + struct.pack("<II", off + len(blobs), len(blob))
        blobs += blob
    return head + bytes(24) + blobs


MALFORMED = ("overlap", "out-of-range", "inside-header", "no-terminator", "truncated",
             "huge-length", "duplicate-guid")


def malformed_table(table, kind):
    """A broken copy of a well-formed cert table, for the parsers' refusal tests: two blobs
    overlapping, an offset past the end, an offset into the entries, no all-zero entry, the
    last blob cut short, a length near 2^32, or the VCEK entry's GUID repeated."""
    t = bytearray(table)
    entries = []
    off = 0
    while t[off:off + 16] != bytes(16):
        entries.append(off)
        off += 24
    first, last = entries[0], entries[-1]
    o, n = struct.unpack_from("<II", t, last + 16)
    if kind == "overlap":
        struct.pack_into("<I", t, last + 16, struct.unpack_from("<I", t, first + 16)[0] + 8)
    elif kind == "out-of-range":
        struct.pack_into("<I", t, last + 16, len(t) + 16)
    elif kind == "inside-header":
        struct.pack_into("<I", t, last + 16, 8)
    elif kind == "no-terminator":
        t = t[:off]
    elif kind == "truncated":
        t = t[:o + n // 2]
    elif kind == "huge-length":
        struct.pack_into("<I", t, last + 20, 0xFFFFFFF0)
    elif kind == "duplicate-guid":
        t[last:last + 16] = t[first:first + 16]
    else:
        raise ValueError(f"unknown malformation {kind!r}; one of {', '.join(MALFORMED)}")
    return bytes(t)


def parse_cert_table(data):
    """[(uuid, blob)] of a cert table, bounds checked (§2.4)."""
    out, spans, off = [], [], 0
    while True:
        if off + 24 > len(data):
            raise ValueError("cert table: no terminating all-zero entry")
        guid, o, n = data[off:off + 16], *struct.unpack_from("<II", data, off + 16)
        off += 24
        if guid == bytes(16):
            if o or n:
                raise ValueError("cert table: terminator with non-zero offset or length")
            return out
        if o < off or o + n > len(data):
            raise ValueError(f"cert table: entry {uuid.UUID(bytes=guid)} out of range")
        for _, (o2, n2) in spans:
            if o < o2 + n2 and o2 < o + n:
                raise ValueError(f"cert table: entry {uuid.UUID(bytes=guid)} overlaps another")
        if guid in [g.bytes for g, _ in out]:
            raise ValueError(f"cert table: entry {uuid.UUID(bytes=guid)} appears twice")
        spans.append((guid, (o, n)))
        out.append((uuid.UUID(bytes=guid), bytes(data[o:o + n])))


def chain_entries(chain_dir, signer):
    ark = load_cert(os.path.join(chain_dir, "ark.pem")).public_bytes(serialization.Encoding.DER)
    if signer == "vlek":
        ask = load_cert(os.path.join(chain_dir, "asvk.pem"))
        return [(GUID_ARK, ark), (GUID_ASK, ask.public_bytes(serialization.Encoding.DER)),
                (GUID_VLEK, open(os.path.join(chain_dir, "vlek.der"), "rb").read())]
    ask = load_cert(os.path.join(chain_dir, "ask.pem"))
    return [(GUID_ARK, ark), (GUID_ASK, ask.public_bytes(serialization.Encoding.DER)),
            (GUID_VCEK, open(os.path.join(chain_dir, "vcek.der"), "rb").read())]


# ---------------------------------------------------------------------------------------------
# Launch measurement through sev-snp-measure (PyPI 0.0.13)


def measure(ovmf, vcpus=1, vcpu_type=None, vcpu_sig=None, vcpu_family=None, vcpu_model=None,
            vcpu_stepping=None, vmm_type=None, guest_features=None, kernel=None, initrd=None,
            append=None, ovmf_hash=None):
    cmd = [SEV_SNP_MEASURE, "--mode", "snp", "--output-format", "hex", "--ovmf", ovmf,
           "--vcpus", str(vcpus)]
    for opt, val in (("--vcpu-type", vcpu_type), ("--vcpu-sig", vcpu_sig),
                     ("--vcpu-family", vcpu_family), ("--vcpu-model", vcpu_model),
                     ("--vcpu-stepping", vcpu_stepping), ("--vmm-type", vmm_type),
                     ("--guest-features", guest_features), ("--kernel", kernel),
                     ("--initrd", initrd), ("--append", append),
                     ("--snp-ovmf-hash", ovmf_hash)):
        if val is not None:
            cmd += [opt, str(val)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"sev-snp-measure failed: {p.stderr.strip() or p.stdout.strip()}")
    digest = p.stdout.strip().splitlines()[-1].strip()
    if len(digest) != 96:
        raise RuntimeError(f"sev-snp-measure printed {p.stdout!r}")
    return bytes.fromhex(digest)


# ---------------------------------------------------------------------------------------------
# Command line


def hexbytes(n):
    def parse(text):
        b = bytes.fromhex(text.removeprefix("0x"))
        if len(b) != n:
            raise argparse.ArgumentTypeError(f"{n} bytes expected, got {len(b)}")
        return b
    return parse


def launch_options(ap):
    g = ap.add_argument_group("launch inputs (measured by sev-snp-measure)")
    g.add_argument("--ovmf")
    g.add_argument("--vcpus", type=int, default=1)
    g.add_argument("--vcpu-type")
    g.add_argument("--vcpu-sig")
    g.add_argument("--vcpu-family")
    g.add_argument("--vcpu-model")
    g.add_argument("--vcpu-stepping")
    g.add_argument("--vmm-type")
    g.add_argument("--guest-features")
    g.add_argument("--kernel")
    g.add_argument("--initrd")
    g.add_argument("--append")
    g.add_argument("--snp-ovmf-hash")


def measure_from(a):
    return measure(a.ovmf, a.vcpus, a.vcpu_type, a.vcpu_sig, a.vcpu_family, a.vcpu_model,
                   a.vcpu_stepping, a.vmm_type, a.guest_features, a.kernel, a.initrd, a.append,
                   a.snp_ovmf_hash)


def poke(text):
    off, _, data = text.partition(":")
    try:
        return int(off, 0), bytes.fromhex(data)
    except ValueError:
        raise argparse.ArgumentTypeError("OFF:HEX, e.g. 0x4c:01") from None


def version3(text):
    parts = [int(x) for x in text.split(".")]
    if len(parts) != 3 or not all(0 <= x < 256 for x in parts):
        raise argparse.ArgumentTypeError("major.minor.build, each 0..255")
    return parts


def cmd_chain(a):
    turin = PRODUCTS[a.product]["turin_layout"]
    tcb = tcb_unpack(parse_tcb(a.tcb, turin), turin)
    vlek_tcb = tcb_unpack(parse_tcb(a.vlek_tcb, False), False) if a.vlek_tcb else None
    nb = datetime.datetime.fromisoformat(a.not_before.rstrip("Z")) if a.not_before else None
    info = mint_chain(a.product, a.out, a.keys, a.chip_id and bytes.fromhex(a.chip_id), tcb,
                      vlek_tcb, nb, a.vcek_years, a.vlek_years, product_name=a.product_name,
                      csp_id=a.csp_id, hwid_der=a.hwid_der, vek_trailer=a.vek_pss_trailer)
    print(json.dumps(info))


def cmd_report(a):
    info = json.load(open(os.path.join(a.chain, "chain.json")))
    p = PRODUCTS[info["product"]]
    turin = p["turin_layout"]
    signer_tcb = info["vlek_tcb"] if a.signer == "vlek" else info["tcb"]
    # A VLEK's TCB is given in Milan layout (its extensions); the report uses the product's.
    default_tcb = tcb_pack(signer_tcb, turin)
    tcb = {k: (parse_tcb(getattr(a, k), turin) if getattr(a, k) else default_tcb)
           for k in ("current_tcb", "reported_tcb", "committed_tcb", "launch_tcb")}
    if a.measurement is not None:
        meas = a.measurement
    elif a.ovmf:
        meas = measure_from(a)
    else:
        meas = bytes(48)
    chip = bytes.fromhex(info["chip_id"]).ljust(64, b"\0")
    if a.chip_id is not None:
        chip = a.chip_id
    elif a.mask_chip_id or a.signer == "vlek":
        chip = bytes(64)
    key_info = (1 if a.author_key_en else 0) | (2 if a.mask_chip_id else 0) | \
        ((1 if a.signer == "vlek" else 0) << 2)
    if a.key_info is not None:
        key_info = int(a.key_info, 0)
    f = {
        "version": a.version, "guest_svn": a.guest_svn, "policy": int(a.policy, 0),
        "family_id": a.family_id or bytes(16), "image_id": a.image_id or bytes(16),
        "vmpl": a.vmpl, "sig_algo": a.sig_algo, "platform_info": int(a.platform_info, 0),
        "key_info": key_info, "report_data": a.report_data or bytes(64), "measurement": meas,
        "host_data": a.host_data or bytes(32), "id_key_digest": a.id_key_digest or bytes(48),
        "author_key_digest": a.author_key_digest or bytes(48),
        "report_id": a.report_id or os.urandom(32), "report_id_ma": a.report_id_ma or b"\xff" * 32,
        "cpuid": tuple(int(x, 0) for x in a.cpuid.split(",")) if a.cpuid else p["cpuid"],
        "chip_id": chip, "current_version": a.current_version,
        "committed_version": a.committed_version or a.current_version,
        "launch_mit_vector": int(a.launch_mit_vector, 0),
        "current_mit_vector": int(a.current_mit_vector, 0),
        **tcb,
    }
    key = serialization.load_pem_private_key(
        open(os.path.join(a.chain, f"{a.signer}.key"), "rb").read(), None)
    body = build_report(f)
    for off, data in a.poke:
        if off + len(data) > SIGNED_SIZE:
            raise ValueError(f"--poke {off:#x}: past the signed region (0x000..0x29F)")
        body[off:off + len(data)] = data
    report = sign_report(body, key)
    if a.container == "raw":
        out = bytes(report)
    elif a.container == "ioctl":
        out = ioctl_response(bytes(report))
    else:
        table = cert_table(chain_entries(a.chain, a.signer))
        if a.malformed:
            table = malformed_table(table, a.malformed)
        out = bytes(report) + table
    with open(a.out, "wb") as fh:
        fh.write(out)
    print(json.dumps({"measurement": meas.hex(), "out": a.out, "size": len(out)}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    sub = ap.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("chain", help="mint a test ARK/ASK/ASVK/VCEK/VLEK chain")
    c.add_argument("--product", choices=sorted(PRODUCTS), required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--keys", help="directory that keeps the keys between runs")
    c.add_argument("--chip-id", help="hwid hex: 64 bytes, 8 on Turin (default random)")
    c.add_argument("--tcb", default="bl=3,tee=0,snp=8,ucode=115,fmc=1",
                   help="the VCEK's TCB: raw 0x... in the product's layout, "
                   "or bl=,tee=,snp=,ucode=[,fmc=]")
    c.add_argument("--vlek-tcb", help="the VLEK's TCB (Milan layout), default the VCEK's")
    c.add_argument("--not-before", help="VCEK/VLEK notBefore (ISO 8601), default yesterday")
    c.add_argument("--vcek-years", type=int, default=7)
    c.add_argument("--vlek-years", type=int, default=1)
    c.add_argument("--product-name", help="VCEK productName (default Milan-B0, Genoa, Turin)")
    c.add_argument("--csp-id", default="CN=sim.example")
    c.add_argument("--hwid-der", action="store_true", help="wrap the hwid in an OCTET STRING")
    c.add_argument("--vek-pss-trailer", action="store_true",
                   help="spell out trailerField 1 in the VEK signature (VCEKs before 2024)")

    r = sub.add_parser("report", help="sign an ATTESTATION_REPORT")
    r.add_argument("--chain", required=True)
    r.add_argument("--signer", choices=["vcek", "vlek"], default="vcek")
    r.add_argument("--out", required=True)
    r.add_argument("--container", choices=["raw", "ioctl", "certs"], default="raw")
    r.add_argument("--malformed", choices=MALFORMED, help="break the cert table (certs)")
    r.add_argument("--version", type=int, choices=[2, 3, 4, 5], default=5)
    r.add_argument("--guest-svn", type=int, default=0)
    r.add_argument("--policy", default="0x30000")
    r.add_argument("--family-id", type=hexbytes(16))
    r.add_argument("--image-id", type=hexbytes(16))
    r.add_argument("--vmpl", type=int, default=0)
    r.add_argument("--sig-algo", type=int, default=1)
    r.add_argument("--platform-info", default="0x1")
    r.add_argument("--author-key-en", action="store_true")
    r.add_argument("--mask-chip-id", action="store_true")
    r.add_argument("--key-info", help="the raw signer-info word, over the flags above")
    r.add_argument("--report-data", type=hexbytes(64))
    r.add_argument("--measurement", type=hexbytes(48), help="else from --ovmf, else zero")
    r.add_argument("--host-data", type=hexbytes(32))
    r.add_argument("--id-key-digest", type=hexbytes(48))
    r.add_argument("--author-key-digest", type=hexbytes(48))
    r.add_argument("--report-id", type=hexbytes(32))
    r.add_argument("--report-id-ma", type=hexbytes(32))
    r.add_argument("--chip-id", type=hexbytes(64), help="default the chain's hwid (zero if masked)")
    r.add_argument("--cpuid", help="family,model,stepping (default the product's)")
    for t in ("current", "reported", "committed", "launch"):
        r.add_argument(f"--{t}-tcb", help="raw 0x... or bl=,tee=,snp=,ucode=[,fmc=]")
    r.add_argument("--current-version", type=version3, default=[1, 55, 22])
    r.add_argument("--committed-version", type=version3)
    r.add_argument("--launch-mit-vector", default="0")
    r.add_argument("--current-mit-vector", default="0")
    r.add_argument("--poke", type=poke, action="append", default=[], metavar="OFF:HEX",
                   help="write these bytes at OFF before signing (reserved bytes, bit 17 "
                   "of the policy, SIGNATURE_ALGO ...: what a format check must refuse)")
    launch_options(r)

    t = sub.add_parser("certtable", help="write a GHCB certificate table (auxblob)")
    t.add_argument("--chain", required=True)
    t.add_argument("--signer", choices=["vcek", "vlek"], default="vcek")
    t.add_argument("--out", required=True)
    t.add_argument("--malformed", choices=MALFORMED, help="break the table this way")

    m = sub.add_parser("measure", help="print the MEASUREMENT sev-snp-measure gives")
    launch_options(m)

    d = sub.add_parser("decode", help="print a report's fields as JSON")
    d.add_argument("report")
    d.add_argument("--offset", type=lambda x: int(x, 0), default=0)

    v = sub.add_parser("verify", help="check a report's signature with a VCEK/VLEK")
    v.add_argument("report")
    v.add_argument("--vek", required=True)

    k = sub.add_parser("check", help="every verdict of §2 on a report, as JSON")
    k.add_argument("report")
    k.add_argument("--vek", required=True)
    k.add_argument("--roots", required=True,
                   help="PEM with the ASK (or ASVK) then the ARK, as KDS's cert_chain")
    k.add_argument("--now", help="ISO 8601 time for the VEK validity check (default now)")

    a = ap.parse_args(argv)
    if a.cmd == "chain":
        cmd_chain(a)
    elif a.cmd == "report":
        cmd_report(a)
    elif a.cmd == "certtable":
        table = cert_table(chain_entries(a.chain, a.signer))
        with open(a.out, "wb") as fh:
            fh.write(malformed_table(table, a.malformed) if a.malformed else table)
    elif a.cmd == "measure":
        if not a.ovmf:
            ap.error("measure needs --ovmf")
        print(measure_from(a).hex())
    elif a.cmd == "decode":
        data = open(a.report, "rb").read()[a.offset:a.offset + REPORT_SIZE]
        print(json.dumps(decode_report(data), indent=1))
    elif a.cmd == "check":
        data = open(a.roots, "rb").read()
        marker = b"-----END CERTIFICATE-----"
        ask, ark = (x509.load_pem_x509_certificate(c + marker)
                    for c in data.split(marker)[:2])
        now = (datetime.datetime.fromisoformat(a.now.rstrip("Z")) if a.now
               else datetime.datetime.utcnow())
        report = open(a.report, "rb").read()[:REPORT_SIZE]
        vek = load_cert(a.vek)
        print(json.dumps({"checks": check_report(report, vek, ask, ark, now),
                          "vek": decode_vek(vek)}, indent=1))
    elif a.cmd == "verify":
        ok = verify_report(open(a.report, "rb").read()[:REPORT_SIZE], load_cert(a.vek))
        print("signature ok" if ok else "signature BAD")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError, RuntimeError, KeyError) as e:
        sys.exit(f"snp_sp.py: {e}")

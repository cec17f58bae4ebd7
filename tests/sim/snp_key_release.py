#!/usr/bin/env python3
"""An independent implementation of the SEV-SNP attested key release
(schema/snp-key-release.md) on pyhpke and hashlib, written from that
document: the oracle of tests/it/snp_secrets.rs and the source of the
document's worked example.

  binding NONCE_HEX PUBLIC_KEY_HEX          REPORT_DATA in hex
  open SEALED KEY_PEM                       the header and the secrets, JSON
  seal --public-key HEX --measurement HEX --report-id HEX --secret GUID:HEX... --out FILE
  keypair --out PEM                         a P-384 key (PKCS#8 PEM); prints the public key
  example                                   the worked example, JSON
"""

import argparse
import hashlib
import json
import struct
import sys
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

LABEL = b"virt-qemu-sev-validate snp-key-release v1\x00"
MAGIC = b"SNPSEAL1"
KEM, KDF, AEAD = 0x0011, 0x0002, 0x0002
SUITE = CipherSuite.new(KEMId.DHKEM_P384_HKDF_SHA384, KDFId.HKDF_SHA384, AEADId.AES256_GCM)
TABLE_HEADER = uuid.UUID("1e74f542-71dd-4d66-963e-ef4287ff173b")
LUKS_KEY = uuid.UUID("736869e5-84f0-4973-92ec-06879ce3da0b")


def binding(nonce: bytes, public_key: bytes) -> bytes:
    assert len(nonce) == 32 and len(public_key) == 97
    return hashlib.sha512(LABEL + nonce + public_key).digest()


def table(secrets) -> bytes:
    """The efi_secret table: header GUID, u32 LE total length, entries
    (GUID, u32 LE length with its 20-byte header, data), zeros to 16."""
    body = b"".join(g.bytes_le + struct.pack("<I", 20 + len(d)) + d for g, d in secrets)
    total = 20 + len(body)
    t = TABLE_HEADER.bytes_le + struct.pack("<I", total) + body
    return t + b"\0" * (-len(t) % 16)


def parse_table(t: bytes):
    assert uuid.UUID(bytes_le=t[:16]) == TABLE_HEADER, "no table header"
    (total,) = struct.unpack("<I", t[16:20])
    assert len(t) == (total + 15) // 16 * 16 and not any(t[total:])
    out, o = [], 20
    while o < total:
        g = uuid.UUID(bytes_le=t[o:o + 16])
        (n,) = struct.unpack("<I", t[o + 16:o + 20])
        out.append((g, t[o + 20:o + n]))
        o += n
    return out


def info(measurement: bytes, report_id: bytes) -> bytes:
    return LABEL + b"sealed" + measurement + report_id


def seal(pk: bytes, measurement: bytes, report_id: bytes, pt: bytes, eks=None) -> bytes:
    pkr = SUITE.kem.deserialize_public_key(pk)
    enc, ctx = SUITE.create_sender_context(pkr, info(measurement, report_id), eks=eks)
    aad = MAGIC + struct.pack(">HHH", KEM, KDF, AEAD) + measurement + report_id
    aad += struct.pack(">H", len(enc)) + enc
    ct = ctx.seal(pt, aad)
    return aad + struct.pack(">I", len(ct)) + ct


def open_sealed(b: bytes, skr):
    assert b[:8] == MAGIC, "bad magic"
    assert struct.unpack(">HHH", b[8:14]) == (KEM, KDF, AEAD), "bad suite"
    m, rid = b[14:62], b[62:94]
    (n,) = struct.unpack(">H", b[94:96])
    enc = b[96:96 + n]
    (ct_len,) = struct.unpack(">I", b[96 + n:100 + n])
    ct = b[100 + n:]
    assert len(ct) == ct_len
    ctx = SUITE.create_recipient_context(enc, skr, info(m, rid))
    return m, rid, ctx.open(ct, b[:96 + n])


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("binding")
    b.add_argument("nonce")
    b.add_argument("public_key")
    o = sub.add_parser("open")
    o.add_argument("sealed")
    o.add_argument("key")
    s = sub.add_parser("seal")
    s.add_argument("--public-key", required=True)
    s.add_argument("--measurement", required=True)
    s.add_argument("--report-id", required=True)
    s.add_argument("--secret", action="append", default=[], help="GUID:HEX")
    s.add_argument("--out", required=True)
    k = sub.add_parser("keypair")
    k.add_argument("--out", required=True)
    sub.add_parser("example")
    a = ap.parse_args()

    if a.cmd == "binding":
        print(binding(bytes.fromhex(a.nonce), bytes.fromhex(a.public_key)).hex())
    elif a.cmd == "open":
        skr = KEMKey.from_pem(open(a.key, "rb").read())
        m, rid, pt = open_sealed(open(a.sealed, "rb").read(), skr)
        entries = [{"guid": str(g), "data": d.hex()} for g, d in parse_table(pt)]
        print(json.dumps({"measurement": m.hex(), "report_id": rid.hex(), "entries": entries}))
    elif a.cmd == "seal":
        secrets = []
        for x in a.secret:
            g, d = x.split(":", 1)
            secrets.append((uuid.UUID(g), bytes.fromhex(d)))
        out = seal(bytes.fromhex(a.public_key), bytes.fromhex(a.measurement),
                   bytes.fromhex(a.report_id), table(secrets))
        open(a.out, "wb").write(out)
    elif a.cmd == "keypair":
        sk = ec.generate_private_key(ec.SECP384R1())
        pem = sk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
        open(a.out, "wb").write(pem)
        print(sk.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint).hex())
    else:
        example()
    return 0


def scalar(k) -> bytes:
    """The 48-byte private scalar: pyhpke 0.6.5 pads it to key_size (in
    bits) bytes, so only its last 48 bytes are the scalar."""
    b = k.to_private_bytes()
    assert not any(b[:-48])
    return b[-48:]


def example():
    """Every value of the worked example, from fixed inputs: the recipient's
    and the ephemeral key pairs are DeriveKeyPair (RFC 9180 7.1.3) of fixed
    IKMs, so the sealed file is reproducible."""
    nonce = bytes(range(32))
    rkp = SUITE.kem.derive_key_pair(b"snp-key-release example recipient".ljust(48, b"\0"))
    ekp = SUITE.kem.derive_key_pair(b"snp-key-release example ephemeral".ljust(48, b"\0"))
    pk = rkp.public_key.to_public_bytes()
    sk = scalar(rkp.private_key)
    pem = ec.derive_private_key(int.from_bytes(sk, "big"), ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    measurement, report_id = bytes([0xAB]) * 48, bytes([0x11]) * 32
    pt = table([(LUKS_KEY, b"example disk key")])
    sealed = seal(pk, measurement, report_id, pt, eks=ekp)
    m, rid, back = open_sealed(sealed, rkp.private_key)
    assert back == pt and m == measurement and rid == report_id
    print(json.dumps({
        "nonce": nonce.hex(),
        "recipient_private_key": sk.hex(),
        "recipient_private_key_pem": pem.decode(),
        "recipient_public_key": pk.hex(),
        "report_data": binding(nonce, pk).hex(),
        "measurement": measurement.hex(),
        "report_id": report_id.hex(),
        "ephemeral_private_key": scalar(ekp.private_key).hex(),
        "info": info(measurement, report_id).hex(),
        "plaintext_table": pt.hex(),
        "aad": sealed[:96 + 97].hex(),
        "sealed": sealed.hex(),
    }, indent=2))


if __name__ == "__main__":
    sys.exit(main())

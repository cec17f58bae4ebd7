#!/usr/bin/python3
"""AMD's certificate revocation lists for a chain minted by snp_sp.py: the test oracle for the
revocation check.

Written from RFC 5280 §5 and the spec (shared/spec/snp-attestation.md §2.3: the KDS serves
/vcek/v1/{P}/crl and /vlek/v1/{P}/crl, DER, signed by the ARK) with python3-cryptography only.
It does not import or call virt-qemu-sev-validate.

  snp_crl.py --chain DIR --out FILE [--revoke ask|asvk|vcek|vlek ...] [--this-update T]
             [--next-update T] [--signed-by ark|ask|asvk] [--issuer-cn CN] [--pem]
             [--certtable FILE [--signer vcek|vlek]]
      a CRL v2 issued by the chain's ARK (issuer = the ARK's subject, byte for byte), signed
      RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 like AMD's, listing the serials of the roles
      given with --revoke (the chain's own certificates). --signed-by signs it with another key
      of the chain (the issuer name stays the ARK's); --issuer-cn names another issuer. Times are ISO 8601 UTC (default: thisUpdate
      a day ago, nextUpdate in 7 days). --certtable also writes a GHCB certificate table with
      the ARK, the AS(V)K, the VEK and this CRL under the GUID 92f81bc3-5811-4d3d-97ff-d19f88dc67ea.
Before writing, the CRL is loaded back with cryptography's own parser and its signature checked
with the signer's public key, so a CRL this script writes is one a third party reads.
"""

import argparse
import datetime
import os
import sys
import uuid
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.utils import CryptographyDeprecationWarning

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snp_sp  # noqa: E402  (the DER helpers, names and cert table of the same simulator)

# VCEKs have serial 0, which cryptography warns about.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)

GUID_CRL = uuid.UUID("92f81bc3-5811-4d3d-97ff-d19f88dc67ea")
OID_CRL_NUMBER = "2.5.29.20"


def serial_of(chain, role):
    if role in ("vcek", "vlek"):
        data = open(os.path.join(chain, f"{role}.der"), "rb").read()
        return x509.load_der_x509_certificate(data).serial_number
    return snp_sp.load_cert(os.path.join(chain, f"{role}.pem")).serial_number


def make_crl(ark_cert, key, serials, this_update, next_update, revoked_at, issuer_cn=None):
    """DER of a CertificateList v2 (RFC 5280 §5.1) signed by key with RSASSA-PSS SHA-384."""
    algid = snp_sp.pss_algid(True)
    issuer = snp_sp.amd_name(issuer_cn) if issuer_cn else ark_cert.subject.public_bytes()
    entries = [snp_sp.der_seq(snp_sp.der_int(s), snp_sp.der_time(revoked_at)) for s in serials]
    crl_number = snp_sp.der_seq(snp_sp.der_oid(OID_CRL_NUMBER),
                                snp_sp.der(0x04, snp_sp.der_int(1)))
    tbs = snp_sp.der_seq(snp_sp.der_int(1), algid, issuer, snp_sp.der_time(this_update),
                         snp_sp.der_time(next_update),
                         *([snp_sp.der_seq(*entries)] if entries else []),
                         snp_sp.der(0xA0, snp_sp.der_seq(crl_number)))
    sig = key.sign(tbs, padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384())
    return snp_sp.der_seq(tbs, algid, snp_sp.der(0x03, b"\x00" + sig))


def check_crl(der, key, serials):
    """cryptography reads the CRL back: the signature, the entries."""
    crl = x509.load_der_x509_crl(der)
    key.public_key().verify(crl.signature, crl.tbs_certlist_bytes,
                            padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384())
    got = sorted(r.serial_number for r in crl)
    if got != sorted(serials):
        raise RuntimeError(f"the CRL lists {got}, not {sorted(serials)}")


def when(text, default):
    if not text:
        return default
    return datetime.datetime.fromisoformat(text.rstrip("Z")).replace(microsecond=0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--chain", required=True, help="a chain minted by snp_sp.py chain")
    ap.add_argument("--out", required=True)
    ap.add_argument("--revoke", action="append", default=[],
                    choices=["ask", "asvk", "vcek", "vlek"])
    ap.add_argument("--this-update")
    ap.add_argument("--next-update")
    ap.add_argument("--signed-by", choices=["ark", "ask", "asvk"], default="ark")
    ap.add_argument("--issuer-cn", help="name another issuer (AMD's other attributes kept)")
    ap.add_argument("--pem", action="store_true", help="write PEM (X509 CRL) instead of DER")
    ap.add_argument("--certtable", help="also write a cert table holding the chain and the CRL")
    ap.add_argument("--signer", choices=["vcek", "vlek"], default="vcek")
    a = ap.parse_args(argv)

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0, tzinfo=None)
    this_update = when(a.this_update, now - datetime.timedelta(days=1))
    next_update = when(a.next_update, now + datetime.timedelta(days=7))
    ark = snp_sp.load_cert(os.path.join(a.chain, "ark.pem"))
    key = serialization.load_pem_private_key(
        open(os.path.join(a.chain, f"{a.signed_by}.key"), "rb").read(), None)
    serials = [serial_of(a.chain, r) for r in a.revoke]
    der = make_crl(ark, key, serials, this_update, next_update, this_update, a.issuer_cn)
    check_crl(der, key, serials)
    with open(a.out, "wb") as f:
        if a.pem:
            f.write(x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM))
        else:
            f.write(der)
    if a.certtable:
        entries = snp_sp.chain_entries(a.chain, a.signer) + [(GUID_CRL, der)]
        with open(a.certtable, "wb") as f:
            f.write(snp_sp.cert_table(entries))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError, RuntimeError) as e:
        sys.exit(f"snp_crl.py: {e}")

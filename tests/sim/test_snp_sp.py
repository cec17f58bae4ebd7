#!/usr/bin/python3
"""Check the simulated SNP Secure Processor (snp_sp.py) against real data and the openssl CLI.

The simulator is the oracle the Rust SNP tests compare against, so it is only worth trusting if:
- its report decoder reads the nine real reports in the SNP vectors exactly as EXPECTED.json says,
  and its verifier accepts their real signatures (so the signing layout is proven on real data);
- the chains it mints verify with `openssl verify`, and fail with another product's roots;
- its certificates encode names, PSS parameters and AMD extensions byte for byte as AMD's real
  ARK/ASK/ASVK/VCEK/VLEK do (minted with the real certificates' hwid and TCB);
- the reports it signs verify with `openssl dgst -sha384 -verify` and fail with one bit flipped;
- its containers hold the report and certificates where the spec says;
- its `measure` reproduces the public sev-snp-measure vectors.

Folders: $SNP_VECTORS_DIR (default ../shared/snp-vectors from the checkout) and $SEV_VECTORS_DIR
(../shared/vectors). RSA-4096 keys are made once into $SNP_SP_KEYS (default: a temporary folder).
Exit status is non-zero when any check fails.
"""

import datetime
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIM = os.path.join(HERE, "snp_sp.py")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
import snp_sp  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

SNP = os.path.abspath(os.environ.get("SNP_VECTORS_DIR",
                                     os.path.join(ROOT, "../shared/snp-vectors")))
SEV = os.path.abspath(os.environ.get("SEV_VECTORS_DIR", os.path.join(ROOT, "../shared/vectors")))
if not os.path.isfile(os.path.join(SNP, "EXPECTED.json")):
    sys.exit(f"SNP vectors not found in {SNP} (set SNP_VECTORS_DIR)")

PASSED, FAILED = 0, []
TMP = tempfile.mkdtemp(prefix="test_snp_sp.")
KEYS = os.environ.get("SNP_SP_KEYS") or os.path.join(TMP, "keys")
EXPECTED = json.load(open(os.path.join(SNP, "EXPECTED.json")))
DER = serialization.Encoding.DER


def check(name, ok, detail=""):
    global PASSED
    if ok:
        PASSED += 1
    else:
        FAILED.append(name)
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))


def run(*args):
    p = subprocess.run([sys.executable, SIM, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def openssl(*args, data=None):
    p = subprocess.run(["openssl", *args], capture_output=True, input=data)
    return p.returncode, p.stdout, p.stderr


def vek_path(name):
    for f in ("vcek.der", "vcek.pem", "vlek.der"):
        if os.path.isfile(os.path.join(SNP, name, f)):
            return os.path.join(SNP, name, f)
    raise FileNotFoundError(name)


def flip(data, offset, bit=0):
    b = bytearray(data)
    b[offset] ^= 1 << bit
    return bytes(b)


def amd_exts(cert):
    return [(e.oid.dotted_string, e.critical, e.value.value) for e in cert.extensions
            if e.oid.dotted_string.startswith(snp_sp.AMD_OID)]


def sig_params(cert):
    """The DER of the outer signatureAlgorithm (PSS parameters included)."""
    top = snp_sp.der_children(snp_sp.der_content(cert.public_bytes(DER)))
    return top[1]


def pss_ok(cert, issuer):
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                   padding.PSS(padding.MGF1(hashes.SHA384()), 48),
                                   hashes.SHA384())
        return True
    except Exception:  # noqa: BLE001  (any failure is a failed check)
        return False


# ---------------------------------------------------------------------------------------------
# 1. The nine real reports: decoder equals EXPECTED.json, real signatures verify.

COMPARED = ["version", "guest_svn", "policy", "vmpl", "sig_algo", "platform_info", "key_info",
            "cpuid_fam_mod_step", "current_tcb", "reported_tcb", "committed_tcb", "launch_tcb",
            "current_version", "committed_version", "launch_mit_vector", "current_mit_vector",
            "family_id", "image_id", "report_data", "measurement", "host_data", "id_key_digest",
            "author_key_digest", "report_id", "report_id_ma", "chip_id"]

check("nine real sets", len(EXPECTED) == 9, str(list(EXPECTED)))
for name, exp in EXPECTED.items():
    report = open(os.path.join(SNP, name, "report.bin"), "rb").read()
    got = snp_sp.decode_report(report)
    for k in COMPARED:
        check(f"{name}: decode {k}", got[k] == exp[k], f"{got[k]} != {exp[k]}")
    check(f"{name}: product", got["product"] == exp["product"], f"{got['product']}")
    # The same through the command line.
    rc, out, err = run("decode", os.path.join(SNP, name, "report.bin"))
    check(f"{name}: decode CLI", rc == 0 and json.loads(out)["measurement"] == exp["measurement"],
          err)
    vek = snp_sp.load_cert(vek_path(name))
    check(f"{name}: real signature verifies", snp_sp.verify_report(report, vek))
    for off in (0x000, 0x090, 0x1A0, 0x29F):
        check(f"{name}: bit flipped at {off:#x} fails",
              not snp_sp.verify_report(flip(report, off), vek))
    check(f"{name}: bytes past the signed region are not signed",
          snp_sp.verify_report(flip(report, 0x330), vek))
    for lo, hi in snp_sp.reserved_ranges(exp["version"]):
        check(f"{name}: reserved {lo:#x}..{hi:#x} zero", not any(report[lo:hi]))
    # Another set's VEK does not verify it.
    other = [n for n in EXPECTED if n != name][0]
    check(f"{name}: {other}'s VEK refuses it",
          not snp_sp.verify_report(report, snp_sp.load_cert(vek_path(other))))
    # The real signature also verifies with the openssl command line, through the sim's
    # R/S conversion.
    region = os.path.join(TMP, "region.bin")
    sig = os.path.join(TMP, "sig.der")
    pub = os.path.join(TMP, "pub.pem")
    open(region, "wb").write(report[:0x2A0])
    open(sig, "wb").write(snp_sp.signature_der(report))
    open(pub, "wb").write(vek.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    rc, out, _ = openssl("dgst", "-sha384", "-verify", pub, "-signature", sig, region)
    check(f"{name}: openssl verifies the real signature", rc == 0 and b"Verified OK" in out, out)

# The sim's verdicts (check) equal EXPECTED.json's on every real set, its VEK decoder reads the
# VEK as EXPECTED.json does, and the verdicts turn with the wrong roots or time.


def roots_pem(spec):
    if isinstance(spec, str):
        return os.path.join(SNP, spec)
    path = os.path.join(TMP, "roots.pem")
    with open(path, "wb") as fh:
        for part in spec:
            fh.write(open(os.path.join(SNP, part), "rb").read())
    return path


def sim_check(report, vek, roots, now):
    rc, out, err = run("check", report, "--vek", vek, "--roots", roots, "--now", now)
    if rc:
        return {"error": err}
    return json.loads(out)


OTHER_ROOTS = {"Milan": "amd-roots/ask_ark_genoa.pem", "Genoa": "amd-roots/ask_ark_turin_vcek.pem",
               "Turin": "amd-roots/ask_ark_milan.pem"}
for name, exp in EXPECTED.items():
    files = exp["files"]
    report = os.path.join(SNP, files["report"])
    vek = os.path.join(SNP, files["vek"])
    inside = exp["vek"]["not_before"][:19]
    got = sim_check(report, vek, roots_pem(files["roots"]), inside)
    want = {k: v for k, v in exp["checks"].items() if k != "tampered_measurement_signature_fails"}
    want["vek_valid_at"] = True
    check(f"{name}: check verdicts equal EXPECTED.json", got.get("checks") == want,
          f"{got.get('checks')} != {want}")
    check(f"{name}: VEK decoded as EXPECTED.json", got.get("vek") == exp["vek"],
          f"{got.get('vek')} != {exp['vek']}")
    wrong = sim_check(report, vek, os.path.join(SNP, OTHER_ROOTS[exp["product"]]), inside)
    check(f"{name}: another product's roots: chain fails",
          wrong.get("checks", {}).get("vek_signed_by_ask") is False
          and wrong["checks"]["report_signature_ok"] is True, str(wrong))
    late = sim_check(report, vek, roots_pem(files["roots"]), exp["vek"]["not_after"][:10]
                     + "T23:59:59")
    check(f"{name}: after the VEK's expiry", late.get("checks", {}).get("vek_valid_at") is False,
          str(late))

# The synthetic cert table (built from the real Turin certificates) parses into them.
table = open(os.path.join(SNP, "synthetic/turin-v5-microsoft.certtable.bin"), "rb").read()
entries = snp_sp.parse_cert_table(table)
tm = os.path.join(SNP, "turin-v5-microsoft")
want = [(snp_sp.GUID_ARK, snp_sp.load_cert(os.path.join(tm, "ark.pem")).public_bytes(DER)),
        (snp_sp.GUID_ASK, snp_sp.load_cert(os.path.join(tm, "ask.pem")).public_bytes(DER)),
        (snp_sp.GUID_VCEK, snp_sp.load_cert(os.path.join(tm, "vcek.pem")).public_bytes(DER))]
check("synthetic cert table parses into the Turin certs", entries == want,
      str([(g, len(b)) for g, b in entries]))
check("cert table from the same certs is byte-identical", snp_sp.cert_table(want) == table)

# ---------------------------------------------------------------------------------------------
# 2. Minted chains: openssl verify, and encodings equal to AMD's real certificates.

os.makedirs(KEYS, exist_ok=True)
CHAINS = {}
for product in ("milan", "genoa", "turin"):
    d = os.path.join(TMP, f"chain-{product}")
    rc, out, err = run("chain", "--product", product, "--out", d, "--keys", KEYS)
    check(f"{product}: chain CLI", rc == 0, err)
    CHAINS[product] = d
    ca = os.path.join(d, "ark.pem")
    for untrusted, leaf in (("ask.pem", "vcek.pem"), ("asvk.pem", "vlek.pem")):
        rc, out, err = openssl("verify", "-CAfile", ca, "-untrusted", os.path.join(d, untrusted),
                               os.path.join(d, leaf))
        check(f"{product}: openssl verify {leaf}", rc == 0 and b": OK" in out, (out + err).decode())
    rc, out, err = openssl("verify", "-CAfile", ca, "-untrusted", os.path.join(d, "asvk.pem"),
                           os.path.join(d, "vcek.pem"))
    check(f"{product}: VCEK under the ASVK fails", rc != 0)
    # Each signature checked with cryptography too.
    certs = {n: snp_sp.load_cert(os.path.join(d, n + ".pem"))
             for n in ("ark", "ask", "asvk", "vcek", "vlek")}
    for leaf, issuer in (("ark", "ark"), ("ask", "ark"), ("asvk", "ark"), ("vcek", "ask"),
                         ("vlek", "asvk")):
        check(f"{product}: {leaf} signed by {issuer}", pss_ok(certs[leaf], certs[issuer]))
    check(f"{product}: VEK serials 0",
          certs["vcek"].serial_number == 0 == certs["vlek"].serial_number)
    check(f"{product}: no AKI/SKI on VEKs",
          not [e for e in certs["vcek"].extensions if e.oid.dotted_string.startswith("2.5.29.")])
    # The cert_chain file as KDS serves it: ASK then ARK.
    chain_pem = open(os.path.join(d, "cert_chain.pem"), "rb").read()
    check(f"{product}: cert_chain is ASK then ARK",
          chain_pem == open(os.path.join(d, "ask.pem"), "rb").read()
          + open(os.path.join(d, "ark.pem"), "rb").read())

for a, b in (("milan", "genoa"), ("genoa", "turin"), ("turin", "milan")):
    rc, _, _ = openssl("verify", "-CAfile", os.path.join(CHAINS[b], "ark.pem"), "-untrusted",
                       os.path.join(CHAINS[a], "ask.pem"), os.path.join(CHAINS[a], "vcek.pem"))
    check(f"{a} chain under {b}'s ARK fails", rc != 0)
    rc, _, _ = openssl("verify", "-CAfile", os.path.join(CHAINS[a], "ark.pem"), "-untrusted",
                       os.path.join(CHAINS[b], "ask.pem"), os.path.join(CHAINS[a], "vcek.pem"))
    check(f"{a} VCEK under {b}'s ASK fails", rc != 0)
# Two chains of one product share the roots (as real chips do) but not the VCEK key.
d2 = os.path.join(TMP, "second-turin")
rc, _, err = run("chain", "--product", "turin", "--out", d2, "--keys", KEYS)
check("second Turin chain", rc == 0, err)
rc, _, _ = openssl("verify", "-CAfile", os.path.join(CHAINS["turin"], "ark.pem"), "-untrusted",
                   os.path.join(CHAINS["turin"], "ask.pem"), os.path.join(d2, "vcek.pem"))
check("second Turin VCEK under the first chain's roots", rc == 0)
check("second Turin VCEK has a key of its own",
      snp_sp.load_cert(os.path.join(d2, "vcek.pem")).public_key().public_numbers()
      != snp_sp.load_cert(os.path.join(CHAINS["turin"], "vcek.pem")).public_key().public_numbers())
# The real AMD roots do not accept a minted VCEK.
rc, _, _ = openssl("verify", "-CAfile", os.path.join(SNP, "turin-v5-microsoft/ark.pem"),
                   "-untrusted", os.path.join(SNP, "turin-v5-microsoft/ask.pem"),
                   os.path.join(CHAINS["turin"], "vcek.pem"))
check("minted Turin VCEK under AMD's real Turin roots fails", rc != 0)

# Roots: names, serial, extensions (SKI/AKI values aside: other keys), PSS parameters, validity.
ROOT_FILES = {"milan": ("ask_ark_milan.pem", "ask_ark_milan_vlek.pem"),
              "genoa": ("ask_ark_genoa.pem", "ask_ark_genoa_vlek.pem"),
              "turin": ("ask_ark_turin_vcek.pem", "ask_ark_turin_vlek.pem")}


def pem_certs(path):
    data = open(path, "rb").read()
    out, marker = [], b"-----END CERTIFICATE-----"
    for chunk in data.split(marker)[:-1]:
        out.append(x509.load_pem_x509_certificate(chunk + marker))
    return out


def same_ca(label, mine, real):
    check(f"{label}: subject", mine.subject.public_bytes() == real.subject.public_bytes())
    check(f"{label}: issuer", mine.issuer.public_bytes() == real.issuer.public_bytes())
    check(f"{label}: serial", mine.serial_number == real.serial_number,
          f"{mine.serial_number:#x} != {real.serial_number:#x}")
    check(f"{label}: signature algorithm DER", sig_params(mine) == sig_params(real))
    check(f"{label}: RSA-4096 e=65537", mine.public_key().key_size == 4096
          and mine.public_key().public_numbers().e == 65537)
    check(f"{label}: AMD's validity", (mine.not_valid_before, mine.not_valid_after)
          == (real.not_valid_before, real.not_valid_after),
          f"{mine.not_valid_before}..{mine.not_valid_after}")
    me = [(e.oid.dotted_string, e.critical) for e in mine.extensions]
    re_ = [(e.oid.dotted_string, e.critical) for e in real.extensions]
    check(f"{label}: extension order and criticality", me == re_, f"{me} != {re_}")
    for oid in ("2.5.29.15", "2.5.29.19", "2.5.29.31"):
        m = [e.value for e in mine.extensions if e.oid.dotted_string == oid]
        r = [e.value for e in real.extensions if e.oid.dotted_string == oid]
        check(f"{label}: extension {oid} value", m == r, f"{m} != {r}")
    ski = mine.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    check(f"{label}: SKI is the key's SHA-1",
          ski == x509.SubjectKeyIdentifier.from_public_key(mine.public_key()))


for product, (vcek_roots, vlek_roots) in ROOT_FILES.items():
    ask, ark = pem_certs(os.path.join(SNP, "amd-roots", vcek_roots))
    asvk, _ = pem_certs(os.path.join(SNP, "amd-roots", vlek_roots))
    d = CHAINS[product]
    same_ca(f"{product} ARK", snp_sp.load_cert(os.path.join(d, "ark.pem")), ark)
    same_ca(f"{product} ASK", snp_sp.load_cert(os.path.join(d, "ask.pem")), ask)
    same_ca(f"{product} ASVK", snp_sp.load_cert(os.path.join(d, "asvk.pem")), asvk)

# VEKs: mint with a real certificate's hwid and TCB; the AMD extensions must be byte-identical
# (order, encodings: raw hwid, 2-byte INTEGER for ucode >= 128, IA5String names), and so must the
# names, the serial, the validity span and the PSS parameters.
VEK_CASES = [
    # (set, product, signer, chain options)
    ("milan-v2-virtee", "milan", "vcek", ["--vek-pss-trailer"]),
    ("milan-v3-microsoft", "milan", "vcek", []),
    ("genoa-v5-cdai", "genoa", "vcek", []),
    ("genoa-v3-microsoft", "genoa", "vcek", []),
    ("turin-v5-anolis", "turin", "vcek", []),
    ("turin-v5-microsoft", "turin", "vcek", []),
    ("milan-v3-vlek-trustee", "milan", "vlek", ["--csp-id", "CN=cc-us-east-2.amazonaws.com"]),
]
for name, product, signer, extra in VEK_CASES:
    real = snp_sp.load_cert(vek_path(name))
    ext = EXPECTED[name]["vek"]["extensions"]
    tcb = f"bl={ext['blSPL']},tee={ext['teeSPL']},snp={ext['snpSPL']},ucode={ext['ucodeSPL']}"
    if "fmcSPL" in ext:
        tcb += f",fmc={ext['fmcSPL']}"
    d = os.path.join(TMP, f"match-{name}")
    args = ["chain", "--product", product, "--out", d, "--keys", KEYS, "--product-name",
            ext["productName"], "--not-before", real.not_valid_before.isoformat(), *extra]
    if signer == "vcek":
        args += ["--chip-id", ext["hwid"], "--tcb", tcb]
    else:
        args += ["--vlek-tcb", tcb]
    rc, out, err = run(*args)
    check(f"{name}: mint matching {signer}", rc == 0, err)
    if rc:
        continue
    mine = snp_sp.load_cert(os.path.join(d, f"{signer}.der"))
    check(f"{name}: AMD extensions byte-identical", amd_exts(mine) == amd_exts(real),
          f"\n mine {[(o[len(snp_sp.AMD_OID):], v.hex()) for o, _, v in amd_exts(mine)]}"
          f"\n real {[(o[len(snp_sp.AMD_OID):], v.hex()) for o, _, v in amd_exts(real)]}")
    check(f"{name}: no other extensions",
          len(list(mine.extensions)) == len(list(real.extensions)))
    check(f"{name}: subject/issuer DER", mine.subject.public_bytes() == real.subject.public_bytes()
          and mine.issuer.public_bytes() == real.issuer.public_bytes())
    check(f"{name}: serial 0", mine.serial_number == real.serial_number == 0)
    check(f"{name}: validity", mine.not_valid_before == real.not_valid_before
          and mine.not_valid_after == real.not_valid_after,
          f"{mine.not_valid_after} != {real.not_valid_after}")
    check(f"{name}: PSS parameters DER", sig_params(mine) == sig_params(real),
          f"{sig_params(mine).hex()} != {sig_params(real).hex()}")
    check(f"{name}: P-384 key", mine.public_key().curve.name == real.public_key().curve.name)
    check(f"{name}: version 3", mine.version == real.version)

# The DER-wrapped hwid form (for parser tests) wraps exactly the raw bytes.
d = os.path.join(TMP, "hwid-der")
rc, _, err = run("chain", "--product", "genoa", "--out", d, "--keys", KEYS, "--hwid-der",
                 "--chip-id", "04" * 64)
hw = [v for o, _, v in amd_exts(snp_sp.load_cert(os.path.join(d, "vcek.der")))
      if o.endswith(".1.4")]
check("hwid DER-wrapped", rc == 0 and hw == [b"\x04\x40" + b"\x04" * 64], err)

# ---------------------------------------------------------------------------------------------
# 3. Signed reports: every field read back, openssl verifies, one flipped bit fails.


def openssl_verifies(report, vek_pem):
    region, sig, pub = (os.path.join(TMP, n) for n in ("r.bin", "s.der", "p.pem"))
    open(region, "wb").write(report[:0x2A0])
    open(sig, "wb").write(snp_sp.signature_der(report))
    rc, out, _ = openssl("x509", "-in", vek_pem, "-pubkey", "-noout")
    open(pub, "wb").write(out)
    rc, out, _ = openssl("dgst", "-sha384", "-verify", pub, "-signature", sig, region)
    return rc == 0 and b"Verified OK" in out


FIELDS = {
    "--guest-svn": "7", "--policy": "0x3001f", "--family-id": "11" * 16,
    "--image-id": "22" * 16, "--vmpl": "2", "--platform-info": "0x25",
    "--report-data": "ab" * 64, "--measurement": "cd" * 48, "--host-data": "ef" * 32,
    "--id-key-digest": "12" * 48, "--author-key-digest": "34" * 48, "--report-id": "56" * 32,
    "--report-id-ma": "78" * 32, "--current-version": "1.55.22",
    "--committed-version": "1.55.21", "--launch-mit-vector": "0xb",
    "--current-mit-vector": "0x3f",
}
for product, d in CHAINS.items():
    info = json.load(open(os.path.join(d, "chain.json")))
    turin = info["turin_layout"]
    for version in (2, 3, 5):
        for signer in ("vcek", "vlek"):
            label = f"{product} v{version} {signer}"
            out = os.path.join(TMP, f"report-{product}-{version}-{signer}.bin")
            args = ["report", "--chain", d, "--signer", signer, "--version", str(version),
                    "--out", out, "--author-key-en",
                    "--current-tcb", "bl=4,tee=1,snp=9,ucode=200,fmc=2",
                    "--committed-tcb", "bl=3,tee=0,snp=8,ucode=115,fmc=1",
                    "--launch-tcb", "bl=3,tee=0,snp=8,ucode=116,fmc=1"]
            for k, v in FIELDS.items():
                args += [k, v]
            rc, so, err = run(*args)
            check(f"{label}: report CLI", rc == 0, err)
            if rc:
                continue
            report = open(out, "rb").read()
            check(f"{label}: 1184 bytes", len(report) == 1184)
            got = snp_sp.decode_report(report)
            exp = {"version": version, "guest_svn": 7, "policy": "0x3001f",
                   "family_id": "11" * 16, "image_id": "22" * 16, "vmpl": 2, "sig_algo": 1,
                   "platform_info": "0x25", "report_data": "ab" * 64, "measurement": "cd" * 48,
                   "host_data": "ef" * 32, "id_key_digest": "12" * 48,
                   "author_key_digest": "34" * 48, "report_id": "56" * 32,
                   "report_id_ma": "78" * 32, "current_version": "1.55.22",
                   "committed_version": "1.55.21",
                   "launch_mit_vector": "0xb" if version >= 5 else "0x0",
                   "current_mit_vector": "0x3f" if version >= 5 else "0x0",
                   "key_info": {"author_key_en": 1, "mask_chip_key": 0,
                                "signing_key": signer.upper()},
                   "cpuid_fam_mod_step": list(snp_sp.PRODUCTS[product]["cpuid"])
                   if version >= 3 else None,
                   "chip_id": (bytes.fromhex(info["chip_id"]).ljust(64, b"\0")
                               if signer == "vcek" else bytes(64)).hex()}
            for k, v in exp.items():
                check(f"{label}: {k}", got[k] == v, f"{got[k]} != {v}")
            # v2 cannot tell Genoa from Milan, nor Turin without its 8-byte CHIP_ID.
            if version >= 3 or (product == "milan" or (product == "turin" and signer == "vcek")):
                check(f"{label}: product", got["product"] == snp_sp.PRODUCTS[product]["name"],
                      got["product"])
            tcbs = {"current_tcb": (4, 1, 9, 200, 2), "committed_tcb": (3, 0, 8, 115, 1),
                    "launch_tcb": (3, 0, 8, 116, 1)}
            for k, (bl, tee, snp_, uc, fmc) in tcbs.items():
                t = got[k]
                ok = (t["bl"], t["tee"], t["snp"], t["ucode"]) == (bl, tee, snp_, uc)
                if turin and version >= 3:
                    ok = ok and t["fmc"] == fmc
                if version >= 3 or product != "turin" or signer == "vcek":
                    check(f"{label}: {k}", ok, str(t))
            signer_tcb = info["vlek_tcb"] if signer == "vlek" else info["tcb"]
            raw = struct.unpack_from("<Q", report, 0x180)[0]
            check(f"{label}: REPORTED_TCB is the signer's",
                  raw == snp_sp.tcb_pack(signer_tcb, turin), hex(raw))
            for lo, hi in snp_sp.reserved_ranges(version):
                check(f"{label}: reserved {lo:#x}..{hi:#x} zero", not any(report[lo:hi]))
            vek = os.path.join(d, f"{signer}.pem")
            check(f"{label}: openssl verifies", openssl_verifies(report, vek))
            check(f"{label}: sim verifies", snp_sp.verify_report(report, snp_sp.load_cert(vek)))
            for off in (0x000, 0x090, 0x180, 0x29F):
                check(f"{label}: flipped bit at {off:#x} fails openssl",
                      not openssl_verifies(flip(report, off, 3), vek))
            other = os.path.join(d, ("vlek" if signer == "vcek" else "vcek") + ".pem")
            check(f"{label}: the other VEK refuses it", not openssl_verifies(report, other))

# Masked chip ID, a raw TCB value and the DEBUG policy pass through untouched.
d = CHAINS["turin"]
out = os.path.join(TMP, "masked.bin")
rc, _, err = run("report", "--chain", d, "--out", out, "--mask-chip-id", "--policy", "0xb0000",
                 "--reported-tcb", "0x6100000005020301")
rep = open(out, "rb").read() if rc == 0 else bytes(1184)
got = snp_sp.decode_report(rep)
check("masked: CHIP_ID zero and MASK_CHIP_KEY", rc == 0 and got["chip_id"] == "00" * 64
      and got["key_info"]["mask_chip_key"] == 1, err)
check("raw REPORTED_TCB", got["reported_tcb"]["raw"] == "0x6100000005020301"
      and got["reported_tcb"]["fmc"] == 1 and got["reported_tcb"]["ucode"] == 97)
check("DEBUG policy", got["policy"] == "0xb0000")

# The verdicts turn on minted reports too: TCB, chip ID, reserved bytes, provisional firmware.
d = CHAINS["genoa"]
roots = os.path.join(d, "cert_chain.pem")
now = datetime.datetime.utcnow().isoformat(timespec="seconds")
for label, args, key, value in (
        ("as minted", [], None, None),
        ("REPORTED_TCB off by one", ["--reported-tcb", "bl=3,tee=0,snp=8,ucode=116"],
         "reported_tcb_equals_vek_tcb", False),
        ("CHIP_ID changed", ["--chip-id", "01" * 64], "chip_id_matches_hwid", False),
        ("reserved byte set", ["--poke", "0x18b:01"], "reserved_zero", False),
        ("provisional firmware", ["--committed-version", "1.55.21"], "committed_equals_current",
         False),
        ("DEBUG", ["--policy", "0xb0000"], "debug_policy_bit19", True)):
    out = os.path.join(TMP, "verdict.bin")
    rc, _, err = run("report", "--chain", d, "--out", out, *args)
    got = sim_check(out, os.path.join(d, "vcek.der"), roots, now).get("checks", {})
    base = {"report_signature_ok": True, "vek_signed_by_ask": True, "ask_signed_by_ark": True,
            "ark_self_signed": True, "reported_tcb_equals_vek_tcb": True,
            "chip_id_matches_hwid": True, "reserved_zero": True,
            "committed_equals_current": True, "debug_policy_bit19": False, "vek_valid_at": True}
    if key:
        base[key] = value
    check(f"minted report, {label}: verdicts", rc == 0 and got == base, f"{err}{got}")

# --poke writes bytes a format check must refuse, and the report is still validly signed.
out = os.path.join(TMP, "poked.bin")
rc, _, err = run("report", "--chain", d, "--out", out, "--poke", "0x4c:01", "--poke",
                 "0x10a:fe", "--poke", "0x29f:80")
rep = open(out, "rb").read() if rc == 0 else bytes(1184)
check("poke: bytes written", rc == 0 and rep[0x4C] == 1 and rep[0x10A] == 0xFE
      and rep[0x29F] == 0x80, err)
check("poke: still signed", snp_sp.verify_report(rep, snp_sp.load_cert(
    os.path.join(d, "vcek.pem"))))
rc, _, err = run("report", "--chain", d, "--out", out, "--poke", "0x2a0:01")
check("poke past the signed region refused", rc != 0 and "signed region" in err, err)

# ---------------------------------------------------------------------------------------------
# 4. Containers.

d = CHAINS["genoa"]
raw, ioctl, certs, aux = (os.path.join(TMP, n) for n in ("c.raw", "c.ioctl", "c.certs", "c.aux"))
common = ["--chain", d, "--report-id", "99" * 32, "--report-data", "01" * 64]
rc1, _, e1 = run("report", *common, "--out", raw)
rc2, _, e2 = run("report", *common, "--out", ioctl, "--container", "ioctl")
rc3, _, e3 = run("report", *common, "--out", certs, "--container", "certs")
rc4, _, e4 = run("certtable", "--chain", d, "--out", aux)
check("container CLIs", rc1 == rc2 == rc3 == rc4 == 0, e1 + e2 + e3 + e4)
if rc1 == rc2 == rc3 == rc4 == 0:
    r = open(raw, "rb").read()
    io = open(ioctl, "rb").read()
    ce = open(certs, "rb").read()
    ax = open(aux, "rb").read()
    # ECDSA signatures are randomised, so compare the signed fields, then each signature.
    check("ioctl: 4000 bytes, status 0, size 1184",
          len(io) == 4000 and struct.unpack_from("<II", io, 0) == (0, 1184) and not any(io[8:0x20]))
    check("ioctl: report at +0x20", io[0x20:0x20 + 0x2A0] == r[:0x2A0]
          and not any(io[0x20 + 1184:]))
    vcek = snp_sp.load_cert(os.path.join(d, "vcek.pem"))
    check("ioctl: report verifies", snp_sp.verify_report(io[0x20:0x20 + 1184], vcek))
    check("certs: report first", ce[:0x2A0] == r[:0x2A0]
          and snp_sp.verify_report(ce[:1184], vcek))
    check("certs: then the same table as certtable", ce[1184:] == ax)
    tab = snp_sp.parse_cert_table(ax)
    check("cert table: ARK, ASK, VCEK", [g for g, _ in tab]
          == [snp_sp.GUID_ARK, snp_sp.GUID_ASK, snp_sp.GUID_VCEK])
    check("cert table: RFC-4122 GUID bytes", ax[:4] == bytes.fromhex("c0b406a4")
          and ax[48:52] == bytes.fromhex("63da758d"))
    check("cert table: blobs are the chain's DER",
          [b for _, b in tab] == [snp_sp.load_cert(os.path.join(d, n)).public_bytes(DER)
                                  for n in ("ark.pem", "ask.pem", "vcek.der")])
    rc, _, err = run("certtable", "--chain", d, "--signer", "vlek", "--out", aux)
    tab = snp_sp.parse_cert_table(open(aux, "rb").read())
    check("VLEK cert table: ARK, ASVK under the ASK GUID, VLEK",
          [g for g, _ in tab] == [snp_sp.GUID_ARK, snp_sp.GUID_ASK, snp_sp.GUID_VLEK]
          and tab[1][1] == snp_sp.load_cert(os.path.join(d, "asvk.pem")).public_bytes(DER), err)
    # Every malformation the Rust parsers are tested with is refused by the sim's parser too,
    # and the well-formed table it was made from is not.
    good_tab = open(aux, "rb").read()
    check("well-formed VLEK table parses", len(snp_sp.parse_cert_table(good_tab)) == 3)
    for kind in snp_sp.MALFORMED:
        bad_path = os.path.join(TMP, f"bad-{kind}")
        rc, _, err = run("certtable", "--chain", d, "--signer", "vlek", "--malformed", kind,
                         "--out", bad_path)
        bad = open(bad_path, "rb").read() if rc == 0 else good_tab
        check(f"malformed {kind}: differs", rc == 0 and bad != good_tab, err)
        try:
            snp_sp.parse_cert_table(bad)
            check(f"malformed {kind}: refused", False)
        except ValueError:
            check(f"malformed {kind}: refused", True)
    rc, _, err = run("report", "--chain", d, "--container", "certs", "--malformed", "overlap",
                     "--out", os.path.join(TMP, "bad-report"))
    check("report + overlapping cert table", rc == 0 and os.path.getsize(
        os.path.join(TMP, "bad-report")) > 1184, err)
    # The parser refuses broken tables.
    good = open(os.path.join(SNP, "synthetic/turin-v5-microsoft.certtable.bin"), "rb").read()
    for label, bad in (("offset past the end", good[:16] + struct.pack("<II", len(good), 10)
                        + good[24:]),
                       ("offset inside the header", good[:16] + struct.pack("<II", 8, 10)
                        + good[24:]),
                       ("no terminator", good[:24])):
        try:
            snp_sp.parse_cert_table(bad)
            check(f"cert table {label} refused", False)
        except ValueError:
            check(f"cert table {label} refused", True)

# ---------------------------------------------------------------------------------------------
# 5. Launch measurement: sev-snp-measure reproduces the public vectors through `measure`, and a
# report made with launch options carries that MEASUREMENT.

if not os.path.exists(snp_sp.SEV_SNP_MEASURE):
    check(f"sev-snp-measure at {snp_sp.SEV_SNP_MEASURE} (scripts/setup.sh installs it)", False)
elif not os.path.isfile(os.path.join(SEV, "VECTORS.json")):
    check(f"public vectors in {SEV}", False)
else:
    vecs = [v for v in json.load(open(os.path.join(SEV, "VECTORS.json")))["launch_digests"]
            if v["mode"] == "snp" and not v.get("kernel") and "append" not in v]
    check("snp vectors without a kernel", len(vecs) >= 4, str(len(vecs)))
    for v in vecs:
        args = ["measure", "--ovmf", os.path.join(SEV, v["ovmf"]), "--vcpus", str(v["vcpus"]),
                "--vcpu-sig", v["vcpu_sig"], "--guest-features", v["guest_features"]]
        rc, out, err = run(*args)
        check(f"measure {v['ovmf']} gf {v['guest_features']}",
              rc == 0 and out.strip() == v["expected"], out + err)
    v = vecs[0]
    out = os.path.join(TMP, "measured.bin")
    rc, so, err = run("report", "--chain", CHAINS["milan"], "--out", out, "--ovmf",
                      os.path.join(SEV, v["ovmf"]), "--vcpus", str(v["vcpus"]), "--vcpu-sig",
                      v["vcpu_sig"], "--guest-features", v["guest_features"])
    check("report --ovmf carries the measured digest", rc == 0 and
          snp_sp.decode_report(open(out, "rb").read())["measurement"] == v["expected"], err)
    rc, _, err = run("measure", "--ovmf", "/nonexistent")
    check("measure of a missing OVMF fails", rc != 0 and "sev-snp-measure" in err, err)

shutil.rmtree(TMP, ignore_errors=True)
print(f"snp_sp: {PASSED} passed, {len(FAILED)} failed")
sys.exit(1 if FAILED else 0)

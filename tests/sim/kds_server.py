#!/usr/bin/python3
"""A stand-in for AMD's Key Distribution Service on loopback, for the KDS fetching tests.

Serves the KDS paths (spec snp-attestation.md §2.3) from the real certificates in the SNP vector
folder (--vectors) and from chains minted by snp_sp.py (--chain, which wins for its product's
cert_chain), never from the project's code:
  /vcek/v1/{Milan,Genoa,Turin}/{hwid hex}?[fmcSPL=..&]blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..
      the vector VCEK (DER) whose productName line, hwid and SPL extensions match, else 404
  /vcek/v1/{P}/cert_chain, /vlek/v1/{P}/cert_chain
      amd-roots/ask_ark_{milan,genoa,turin_vcek}.pem / ask_ark_{p}_vlek.pem (PEM, ASK then ARK)
  /vcek/v1/{P}/crl, /vlek/v1/{P}/crl
      crl.der of a --chain folder for its product (written there by snp_crl.py), else 404
A malformed query (missing or non-numeric SPL) gets 400, as a picky server would.

On demand it misbehaves: --busy N answers the first N requests with 429 (-1: every request) and
`Retry-After: S` (--retry-after S, or 'none' to leave the header out); --html answers 200 with an
HTML page. It appends "GET <path> <status>" per request to --log, so tests count the requests it
got. It prints "PORT <n>" on stdout once it listens on 127.0.0.1 (--port 0 picks a free port).
"""

import argparse
import http.server
import json
import os
import sys
import threading
import urllib.parse
import warnings

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

# AMD's VCEKs have serial 0, which cryptography warns about; they are what KDS serves.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)

AMD_OID = "1.3.6.1.4.1.3704.1."
PRODUCTS = ("Milan", "Genoa", "Turin")


def der_int(b):
    """Value of a DER INTEGER (tag 02)."""
    if len(b) < 3 or b[0] != 0x02 or b[1] != len(b) - 2:
        raise ValueError(f"not a short DER INTEGER: {b.hex()}")
    return int.from_bytes(b[2:], "big", signed=True)


def vcek_index(folders):
    """(product, hwid hex, {spl name: value}) -> DER, for every VCEK in the folders."""
    index = []
    for folder in folders:
        for fname in ("vcek.der", "vcek.pem"):
            path = os.path.join(folder, fname)
            if not os.path.isfile(path):
                continue
            data = open(path, "rb").read()
            cert = (x509.load_pem_x509_certificate if fname.endswith(".pem")
                    else x509.load_der_x509_certificate)(data)
            ext = {e.oid.dotted_string[len(AMD_OID):]: e.value.value
                   for e in cert.extensions if e.oid.dotted_string.startswith(AMD_OID)}
            product = ext["2"][2:].decode()  # IA5String: 16 len text
            line = product.split("-")[0]
            spls = {"blSPL": der_int(ext["3.1"]), "teeSPL": der_int(ext["3.2"]),
                    "snpSPL": der_int(ext["3.3"]), "ucodeSPL": der_int(ext["3.8"])}
            if "3.9" in ext:
                spls["fmcSPL"] = der_int(ext["3.9"])
            index.append((line, ext["4"].hex(), spls, cert.public_bytes(Encoding.DER)))
    return index


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", help="the SNP vector folder")
    ap.add_argument("--chain", action="append", default=[],
                    help="a chain minted by snp_sp.py: its VCEK is served, and its "
                    "cert_chain.pem / vlek_cert_chain.pem for its product (repeatable)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True, help="file that gets one line per request")
    ap.add_argument("--busy", type=int, default=0, help="answer this many requests with 429")
    ap.add_argument("--retry-after", default="1", help="Retry-After seconds, or 'none'")
    ap.add_argument("--html", action="store_true", help="answer 200 with an HTML page")
    args = ap.parse_args()

    if not args.vectors and not args.chain:
        ap.error("give --vectors or --chain")
    folders = []
    roots = {}  # (kind, product) -> PEM file, ASK/ASVK then ARK
    crls = {}  # product -> DER CRL file
    if args.vectors:
        folders += [os.path.join(args.vectors, n) for n in sorted(os.listdir(args.vectors))]
        for product in PRODUCTS:
            stem = "turin_vcek" if product == "Turin" else product.lower()
            roots[("vcek", product)] = os.path.join(args.vectors, "amd-roots",
                                                    f"ask_ark_{stem}.pem")
            roots[("vlek", product)] = os.path.join(args.vectors, "amd-roots",
                                                    f"ask_ark_{product.lower()}_vlek.pem")
    for chain in args.chain:
        folders.append(chain)
        product = PRODUCTS[["milan", "genoa", "turin"].index(
            json.load(open(os.path.join(chain, "chain.json")))["product"])]
        roots[("vcek", product)] = os.path.join(chain, "cert_chain.pem")
        roots[("vlek", product)] = os.path.join(chain, "vlek_cert_chain.pem")
        crls[product] = os.path.join(chain, "crl.der")
    index = vcek_index(folders)
    lock = threading.Lock()
    state = {"busy": args.busy}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # the request log is --log, not stderr
            pass

        def answer(self, status, body=b"", ctype="application/octet-stream", headers=()):
            # Logged before answering, so a client that has its answer sees the line.
            with lock, open(args.log, "a") as f:
                f.write(f"GET {self.path} {status}\n")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            with lock:
                busy = state["busy"] != 0
                if state["busy"] > 0:
                    state["busy"] -= 1
            if busy:
                hdr = () if args.retry_after == "none" else (("Retry-After", args.retry_after),)
                return self.answer(429, b"Too Many Requests", "text/plain", hdr)
            if args.html:
                return self.answer(200, b"<html><body>Service busy</body></html>", "text/html")
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[0] not in ("vcek", "vlek") or parts[1] != "v1" \
                    or parts[2] not in PRODUCTS:
                return self.answer(404, b"Not Found", "text/plain")
            kind, _, product, leaf = parts
            if leaf == "cert_chain":
                path = roots.get((kind, product))
                if not path or not os.path.isfile(path):
                    return self.answer(404, b"Not Found", "text/plain")
                return self.answer(200, open(path, "rb").read(), "application/x-pem-file")
            if leaf == "crl":
                path = crls.get(product)
                if not path or not os.path.isfile(path):
                    return self.answer(404, b"Not Found", "text/plain")
                return self.answer(200, open(path, "rb").read(), "application/pkix-crl")
            if kind != "vcek":
                return self.answer(404, b"Not Found", "text/plain")  # VLEKs need credentials
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            need = ["blSPL", "teeSPL", "snpSPL", "ucodeSPL"]
            if product == "Turin":
                need.append("fmcSPL")
            try:
                asked = {k: int(query[k][0]) for k in need}
            except (KeyError, ValueError):
                return self.answer(400, b"Bad Request", "text/plain")
            for line, hwid, spls, der in index:
                if line == product and hwid == leaf.lower() and spls == asked:
                    return self.answer(200, der, "application/x-x509-ca-cert")
            return self.answer(404, b"Not Found", "text/plain")

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            # A client closing its keep-alive connection is normal, not worth a traceback.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", args.port), Handler)
    open(args.log, "a").close()
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

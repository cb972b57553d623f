"""A local RFC 3161 timestamp authority for the tests: no network, a clock the test sets.

Built from `cryptography` (keys, certificates) and `asn1crypto` (the CMS/TSP structures):
a self-signed root CA, a TSA certificate it issues with the critical `timeStamping`
extended key usage, and an HTTP server on 127.0.0.1 answering `application/timestamp-query`
POSTs with DER `TimeStampResp`s, signed ECDSA-P256/SHA-256 over signed attributes (content
type, message digest, signing time, ESS signing-certificate-v2), as real TSAs answer.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
FAR = datetime(2100, 1, 1, tzinfo=UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(**on: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    return x509.KeyUsage(**{**flags, **on})


def make_root(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(EPOCH)
        .not_valid_after(FAR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


class LocalTSA:
    """A timestamp authority whose clock (`now`) and certificate validity a test controls.

    `mode`: "ok"; "http-error" (answers 500); "wrong-imprint" (stamps another hash);
    "rejection" (a granted-less status).
    """

    def __init__(
        self, name: str = "Test TSA", *, not_after: datetime = FAR, now: datetime | None = None
    ) -> None:
        self.root, root_key = make_root(f"{name} Root")
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.root.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(EPOCH)
            .not_valid_after(not_after)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .add_extension(_usage(digital_signature=True), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        self.now = now or datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        self.mode = "ok"
        self.requests = 0
        self.url = ""

    def root_pem(self, folder: Path) -> Path:
        """Write the root certificate as PEM (what a reviewer passes as --tsa-roots)."""
        path = folder / f"{secrets.token_hex(4)}-tsa-root.pem"
        path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return path

    def respond(self, request_der: bytes) -> bytes:
        """The DER TimeStampResp to one DER TimeStampReq."""
        self.requests += 1
        request = tsp.TimeStampReq.load(request_der)
        if self.mode == "rejection":  # a TimeStampResp holding only its PKIStatusInfo
            status = tsp.PKIStatusInfo(
                {"status": "rejection", "status_string": ["not today"]}
            ).dump()
            return core.Sequence.load(b"\x30" + _der_length(len(status)) + status).dump()
        imprint = request["message_imprint"]
        if self.mode == "wrong-imprint":
            imprint = tsp.MessageImprint(
                {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": hashlib.sha256(b"other").digest(),
                }
            )
        info = {
            "version": "v1",
            "policy": "1.3.6.1.4.1.99999.1",
            "message_imprint": imprint,
            "serial_number": secrets.randbits(63),
            "gen_time": self.now,
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"].native
        tst_der = tsp.TSTInfo(info).dump()
        cert = asn1_x509.Certificate.load(self.cert.public_bytes(serialization.Encoding.DER))
        ess = tsp.SigningCertificateV2(
            {"certs": [{"cert_hash": hashlib.sha256(cert.dump()).digest()}]}
        )
        attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute(
                    {"type": "signing_time", "values": [cms.Time({"utc_time": self.now})]}
                ),
                cms.CMSAttribute(
                    {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}
                ),
                cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}),
            ]
        )
        signature = self.key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {"issuer": cert.issuer, "serial_number": cert.serial_number}
                        )
                    }
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": core.ParsableOctetString(tst_der),
                },
                "certificates": [cert] if request["cert_req"].native else [],
                "signer_infos": [signer],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed})
        return tsp.TimeStampResp(
            {"status": {"status": "granted"}, "time_stamp_token": token}
        ).dump()

    @contextmanager
    def serve(self) -> Iterator[LocalTSA]:
        """Answer on http://127.0.0.1:PORT/ until the block ends (sets `url`)."""
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if (
                    tsa.mode == "http-error"
                    or self.headers.get("Content-Type") != "application/timestamp-query"
                ):
                    self.send_response(500)
                    self.end_headers()
                    return
                reply = tsa.respond(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

    def later(self, **delta: float) -> None:
        """Move the TSA's clock forward."""
        self.now += timedelta(**delta)

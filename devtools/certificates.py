"""A certificate authority and a server certificate signed by it, made with the openssl command for one run (the
tests' and compose-check's HTTPS): the client trusts the CA, Envoy serves the certificate and its key."""
import dataclasses
import pathlib
import subprocess


@dataclasses.dataclass(frozen=True)
class Certificates:
    ca: pathlib.Path  # what a client trusts
    cert: pathlib.Path  # what Envoy serves (GATEWAY_TLS_CERT)
    key: pathlib.Path  # its private key (GATEWAY_TLS_KEY)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_certificates(folder: pathlib.Path, names: tuple[str, ...] = ("localhost",),
                      addresses: tuple[str, ...] = ("127.0.0.1",)) -> Certificates:
    """In `folder`: ca.pem, server.pem and server-key.pem, valid for a day for `names` and `addresses`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, request = folder / "server.pem", folder / "server-key.pem", folder / "server.csr"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
             "-subj", "/CN=textgen test CA", "-keyout", str(ca_key), "-out", str(ca))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
             f"/CN={names[0]}", "-keyout", str(key), "-out", str(request))
    extensions = folder / "server.ext"
    alt_names = [f"DNS:{n}" for n in names] + [f"IP:{a}" for a in addresses]
    extensions.write_text(f"subjectAltName={','.join(alt_names)}\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "1", "-extfile", str(extensions), "-out", str(cert))
    key.chmod(0o644)  # Envoy in its container runs as another user than the one that made it
    return Certificates(ca, cert, key)

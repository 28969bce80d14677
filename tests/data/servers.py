"""Local servers for the URI tests: moto's S3 in server mode and a small HTTP(S) file server, all on 127.0.0.1.

moto runs as its own process (``python -m moto.server``), as a real S3-compatible endpoint would, so the tests
go through the same network path (botocore -> aiohttp -> HTTP) as a user's S3; it is stopped by its PID.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import pandas as pd

__all__ = ["free_port", "moto_server", "file_server", "self_signed_cert", "Tables", "BUCKET", "SECRET"]

BUCKET = "lrsweep-data"
ACCESS_KEY = "AKIAFAKEKEYID0000000"
SECRET = "FAKE-SECRET-1234"  # planted: must appear in nothing uri.py shows
HTTP_USER, HTTP_PASSWORD = "reader", "FAKE-PASSWORD-9876"  # planted too


@dataclass(frozen=True)
class Tables:
    """The same small tables on disk (``local``), in S3 under ``BUCKET`` and in the HTTP server's folder."""

    local: Path  # folder holding data.csv, data.csv.gz, data.parquet, parts/ (3 parts + _SUCCESS), notes/
    frame: pd.DataFrame


HOST = "127.0.0.1"
_START_DEADLINE_S = 60  # a bound on waiting for the server to answer, not a performance expectation


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS picks it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses every connection at once for the block: held bound, never listened on. (A
    port free_port() found free can be taken by the time it is used: a Spark JVM of a test running beside picks
    ports of that range, and answers nothing, so a client waits for its timeouts instead of being refused.)"""
    with socket.socket() as s:  # no SO_REUSEADDR: no other socket can bind it meanwhile
        s.bind((HOST, 0))
        yield int(s.getsockname()[1])


@contextmanager
def moto_server(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``moto.server`` on a free port; yield its endpoint URL; stop it by PID at the end."""
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | (extra_env or {})
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: moto logs every request, and a full pipe blocks it
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            _wait_until_answering(proc, endpoint, log)
            yield endpoint
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_answering(proc: subprocess.Popen[bytes], endpoint: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + _START_DEADLINE_S
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"moto server exited with {proc.returncode}:\n{log.read().decode(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, even if not with 200
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            log.seek(0)
            raise RuntimeError(f"moto server did not answer on {endpoint}:\n{log.read().decode(errors='replace')}")
        time.sleep(0.1)


class _Handler(SimpleHTTPRequestHandler):
    """Static files with byte ranges (Parquet readers seek) and HTTP basic auth under /private/."""

    credentials: tuple[str, str] = ("", "")

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        if self.path.startswith("/private/"):
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start, end = 0, len(data)
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[len("bytes=") :].partition("-")
            start, end = int(first), min(int(last) + 1 if last else len(data), len(data))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if not head:
            self.wfile.write(data[start:end])


@contextmanager
def file_server(root: Path, credentials: tuple[str, str], cert: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve ``root`` over HTTP (or HTTPS with ``cert`` = (certificate, key)) from a thread; yield the base URL."""
    handler = type("Handler", (_Handler,), {"credentials": credentials})
    server = ThreadingHTTPServer((HOST, 0), partial(handler, directory=str(root)))
    if cert is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if cert else 'http'}://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key (PEM files in ``folder``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path

"""uri.py against a local S3 (moto server), a local HTTP(S) server and the local disk."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pandas as pd
import pytest

from lrsweep.data import uri
from lrsweep.errors import LrsweepError
from tests.data.servers import BUCKET, HTTP_PASSWORD, HTTP_USER, SECRET, Tables, refused_port

S3 = f"s3://{BUCKET}"
FILES = ["data.csv", "data.csv.gz", "data.parquet", "parts"]


def local_read(path: Path) -> pd.DataFrame:
    """The local reader's result (pandas on the path itself)."""
    if path.is_dir() or path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, low_memory=False)


def local_sha256(path: Path) -> str:
    """The local fingerprint's rule, with hashlib: a folder's *.parquet parts in name order, a .gz decompressed."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*.parquet")) if path.is_dir() else [path]:
        data = f.read_bytes()
        h.update(gzip.decompress(data) if f.name.endswith(".gz") else data)
    return h.hexdigest()


def local_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.parquet")) if path.is_dir() else path.stat().st_size


def error_of(text: str) -> LrsweepError:
    with pytest.raises(LrsweepError) as info:
        uri.resolve(text)
    return info.value


def assert_one_line(err: LrsweepError) -> None:
    assert "\n" not in str(err) and err.problem and err.fix


# --- telling URIs from paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://bucket/key.csv", "s3"),
        ("S3://bucket/key.csv", "s3"),
        ("s3a://bucket/key.csv", "s3a"),
        ("gs://bucket/key.csv", "gs"),
        ("https://example.org/x.csv", "https"),
        ("file:///tmp/x.csv", "file"),
        ("data/x.csv", None),
        ("/abs/x.csv", None),
        ("C://data/x.csv", None),  # a drive letter
        ("C:\\data\\x.csv", None),
        ("s3:/bucket/key", None),  # not scheme://
    ],
)
def test_scheme_and_is_uri(text: str, expected: str | None) -> None:
    assert uri.scheme(text) == expected
    assert uri.is_uri(text) is (expected is not None)


# --- local paths and file:// ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_local_path_and_file_uri_read_as_the_local_reader(tables: Tables, name: str) -> None:
    path = tables.local / name
    for text in (str(path), path.as_uri()):
        loc = uri.resolve(text)
        assert not loc.is_remote and loc.path == path and uri.is_dir(loc) is path.is_dir()
        pd.testing.assert_frame_equal(uri.read_pandas(loc), local_read(path))
        assert uri.sha256(loc) == local_sha256(path)
        assert uri.size_bytes(loc) == local_size(path)


def test_file_uri_is_percent_decoded(tmp_path: Path, tables: Tables) -> None:
    spaced = tmp_path / "my data.csv"
    spaced.write_bytes((tables.local / "data.csv").read_bytes())
    assert "%20" in spaced.as_uri()
    assert uri.resolve(spaced.as_uri()).path == spaced


def test_local_errors(tmp_path: Path, tables: Tables) -> None:
    err = error_of(str(tmp_path / "missing.csv"))
    assert "does not exist" in err.problem and "missing.csv" in err.problem
    err = error_of(str(tables.local / "notes"))
    assert "no Parquet files" in err.problem
    err = error_of("file://data.csv")  # two slashes: "data.csv" would be a host
    assert "file:///" in err.fix
    assert_one_line(err)


# --- S3 (moto) -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_s3_reads_and_hashes_as_local(aws: str, tables: Tables, name: str) -> None:
    loc = uri.resolve(f"{S3}/{name}")
    path = tables.local / name
    assert loc.is_remote and loc.path is None and uri.is_dir(loc) is path.is_dir()
    assert loc.text == f"{S3}/{name}"
    pd.testing.assert_frame_equal(uri.read_pandas(loc), local_read(path))
    assert uri.sha256(loc) == local_sha256(path)
    assert uri.size_bytes(loc) == local_size(path)


def test_parquet_parts_are_the_parquet_files_in_name_order(aws: str, tables: Tables) -> None:
    expected = [f"{BUCKET}/parts/part-{i:05d}.parquet" for i in range(3)]
    assert uri.parquet_parts(uri.resolve(f"{S3}/parts/")) == expected
    assert uri.parquet_parts(uri.resolve(f"{S3}/data.parquet")) == [f"{BUCKET}/data.parquet"]
    local = tables.local / "parts"
    assert uri.parquet_parts(uri.resolve(str(local))) == sorted(local.glob("*.parquet"))
    assert uri.parquet_parts(uri.resolve(str(tables.local / "data.parquet"))) == [tables.local / "data.parquet"]


def test_s3_format_can_be_forced(aws: str, tables: Tables) -> None:
    loc = uri.resolve(f"{S3}/data.parquet")
    with pytest.raises(LrsweepError, match="as csv"):
        uri.read_pandas(loc, "csv")
    pd.testing.assert_frame_equal(uri.read_pandas(uri.resolve(f"{S3}/data.csv"), "csv"), tables.frame)


def test_s3_missing_key(aws: str) -> None:
    err = error_of(f"{S3}/nope.csv")
    assert err.problem == f"data file '{S3}/nope.csv' does not exist"
    assert_one_line(err)


def test_s3_missing_bucket(aws: str) -> None:
    err = error_of("s3://no-such-bucket/data.csv")
    assert "bucket 'no-such-bucket'" in err.problem and "does not exist" in err.problem
    assert_one_line(err)


def test_s3_folder_without_parquet(aws: str) -> None:
    assert "no Parquet files" in error_of(f"{S3}/notes").problem


def test_s3_endpoint_comes_from_aws_endpoint_url(monkeypatch: pytest.MonkeyPatch, aws: str) -> None:
    with refused_port() as port:  # nothing listens there
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        err = error_of(f"{S3}/data.csv")
    assert err.problem == f"cannot reach the server of '{S3}/data.csv' at http://127.0.0.1:{port}"
    assert "AWS_ENDPOINT_URL" in err.fix
    assert_one_line(err)


def test_s3_no_credentials(monkeypatch: pytest.MonkeyPatch, aws: str) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    err = error_of(f"{S3}/data.csv")
    assert "no AWS credentials" in err.problem and "AWS_PROFILE" in err.fix
    assert_one_line(err)


def test_s3_rejected_credentials(monkeypatch: pytest.MonkeyPatch, aws: str, s3_with_auth: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_with_auth)  # a server that knows no key
    err = error_of(f"{S3}/data.csv")
    assert "was refused" in err.problem and "AWS_ACCESS_KEY_ID" in err.fix
    assert_one_line(err)


def test_s3_credentials_from_a_profile(monkeypatch: pytest.MonkeyPatch, aws: str, tmp_path: Path) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    creds = tmp_path / "credentials"
    creds.write_text(f"[lrsweep-test]\naws_access_key_id = AKIAPROFILE000000000\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_PROFILE", "lrsweep-test")
    assert uri.resolve(f"{S3}/data.csv").is_remote
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    err = error_of(f"{S3}/data.csv")
    assert err.problem == "AWS profile 'no-such-profile' is not configured"


def test_s3_credentials_in_the_uri_are_refused(aws: str) -> None:
    err = error_of(f"s3://AKIAINURI:{SECRET}@{BUCKET}/data.csv")
    assert "carries credentials" in err.problem and "AWS_ACCESS_KEY_ID" in err.fix
    assert SECRET not in str(err)


def test_missing_filesystem_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    # as if s3fs and gcsfs were not installed: fsspec imports them when a scheme is first used
    loaded = sys.modules["fsspec.registry"]._registry  # filesystem classes already imported, by scheme
    monkeypatch.delitem(loaded, "s3", raising=False)
    monkeypatch.delitem(loaded, "gs", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    err = error_of(f"{S3}/data.csv")
    assert err.problem == "reading s3:// needs the s3fs package" and err.fix == "pip install 'lrsweep[s3]'"
    err = error_of("gs://bucket/data.csv")
    assert err.problem == "reading gs:// needs the gcsfs package" and err.fix == "pip install 'lrsweep[gcs]'"


def test_unknown_scheme() -> None:
    assert "unknown URI scheme 'nosuch'" in error_of("nosuch://x/y.csv").problem


# --- HTTP(S) ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["data.csv", "data.csv.gz", "data.parquet"])
def test_http_reads_and_hashes_as_local(http_base: str, tables: Tables, name: str) -> None:
    loc = uri.resolve(f"{http_base}/{name}")
    assert loc.is_remote and not loc.is_dir
    pd.testing.assert_frame_equal(uri.read_pandas(loc), local_read(tables.local / name))
    assert uri.sha256(loc) == local_sha256(tables.local / name)
    assert uri.size_bytes(loc) == local_size(tables.local / name)


def test_http_basic_auth_from_the_uri(http_base: str, tables: Tables) -> None:
    host = http_base.removeprefix("http://")
    loc = uri.resolve(f"http://{HTTP_USER}:{HTTP_PASSWORD}@{host}/private/data.csv")
    assert HTTP_PASSWORD not in loc.url and HTTP_USER not in loc.url
    assert loc.text == f"http://{HTTP_USER}:***@{host}/private/data.csv"
    pd.testing.assert_frame_equal(uri.read_pandas(loc), tables.frame)
    err = error_of(f"http://{HTTP_USER}:wrong@{host}/private/data.csv")
    assert "was refused (HTTP 401)" in err.problem
    err = error_of(f"{http_base}/private/data.csv")  # no credentials at all
    assert "was refused (HTTP 401)" in err.problem


def test_http_errors(http_base: str) -> None:
    err = error_of(f"{http_base}/nope.csv")
    assert err.problem == f"data file '{http_base}/nope.csv' does not exist"
    with refused_port() as port:
        err = error_of(f"http://127.0.0.1:{port}/data.csv")
    assert err.problem.startswith("cannot reach the server of") and f"127.0.0.1:{port}" in err.problem
    assert_one_line(err)


def test_https_with_an_untrusted_certificate(tls: tuple[str, Path]) -> None:
    base, _ = tls
    err = error_of(f"{base}/data.csv")
    assert "TLS certificate" in err.problem and "SSL_CERT_FILE" in err.fix


def test_https_with_the_certificate_trusted(tls: tuple[str, Path], tables: Tables) -> None:
    # aiohttp reads the trusted certificates once, at import: a fresh process sees SSL_CERT_FILE
    base, cert = tls
    code = (
        "import json, sys\nfrom lrsweep.data import uri\n"
        "loc = uri.resolve(sys.argv[1])\n"
        "df = uri.read_pandas(loc)\n"
        "print(json.dumps({'sha256': uri.sha256(loc), 'frame': df.to_json()}))\n"
    )
    env = os.environ | {"SSL_CERT_FILE": str(cert)}
    out = subprocess.run(
        [sys.executable, "-c", code, f"{base}/data.csv.gz"], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["sha256"] == local_sha256(tables.local / "data.csv.gz")
    assert got["frame"] == local_read(tables.local / "data.csv.gz").to_json()


# --- secrets ----------------------------------------------------------------------------------------------------


def test_no_secret_in_anything_shown(
    aws: str,
    http_base: str,
    s3_with_auth: str,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    host = http_base.removeprefix("http://")
    shown: list[str] = []

    def show(obj: object) -> None:
        if isinstance(obj, LrsweepError):
            shown.extend([str(obj), repr(obj), obj.problem, obj.fix or ""])
            shown.append("".join(traceback.format_exception(obj)))  # what LRSWEEP_DEBUG=1 prints
        elif isinstance(obj, uri.Location):
            # not obj.url: it is what fsspec opens, so a secret query parameter (a presigned URL's
            # signature) has to stay in it; a user:password never does (checked below)
            shown.extend([str(obj), repr(obj), obj.text, obj.name, str(obj.path)])
        else:
            shown.append(repr(obj))

    def attempt(fn, *args) -> None:  # type: ignore[no-untyped-def]
        try:
            show(fn(*args))
        except LrsweepError as err:
            show(err)

    good = [
        f"{S3}/data.csv",
        f"{S3}/parts",
        f"http://{HTTP_USER}:{HTTP_PASSWORD}@{host}/private/data.csv",
        f"{http_base}/data.csv?token={SECRET}",
    ]
    for text in good:
        loc = uri.resolve(text)
        assert HTTP_PASSWORD not in loc.url
        show(loc)
        for fn in (uri.parquet_parts, uri.size_bytes, uri.sha256, uri.read_pandas):
            attempt(fn, loc)
    bad = [
        f"{S3}/nope.csv",
        "s3://no-such-bucket/x.csv",
        f"s3://AKIAINURI:{SECRET}@{BUCKET}/data.csv",
        f"http://{HTTP_USER}:{HTTP_PASSWORD}@{host}/private/nope.csv",
        f"http://{HTTP_USER}:{HTTP_PASSWORD}@127.0.0.1:{closed_port}/data.csv",
        f"http://{HTTP_USER}:{SECRET}@{host}/private/data.csv",  # wrong password
        f"{http_base}/nope.csv?token={SECRET}",
        f"gs://u:{SECRET}@bucket/x.csv",
    ]
    for text in bad:
        attempt(uri.resolve, text)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_with_auth)
    attempt(uri.resolve, f"{S3}/data.csv")  # refused credentials
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    attempt(uri.resolve, f"{S3}/data.csv")  # unreachable endpoint

    assert len(shown) > 50  # the collection itself worked
    basic = base64.b64encode(f"{HTTP_USER}:{HTTP_PASSWORD}".encode()).decode()  # as sent in the header
    for secret in (SECRET, HTTP_PASSWORD, basic):
        leaks = [s for s in shown if secret in s]
        assert not leaks, leaks[:3]
        assert secret not in caplog.text

"""Fixtures for data tests: a local S3 (moto in server mode) with test tables uploaded, an HTTP(S) file server, and
an environment free of the machine's AWS settings."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data.servers import (
    ACCESS_KEY,
    BUCKET,
    HTTP_PASSWORD,
    HTTP_USER,
    SECRET,
    Tables,
    file_server,
    moto_server,
    refused_port,
    self_signed_cert,
)


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 10, n).round(2)),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "churn": rng.choice(["yes", "no"], n),
        }
    )


@pytest.fixture(scope="session")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Tables:
    root = tmp_path_factory.mktemp("tables")
    df = _frame()
    df.to_csv(root / "data.csv", index=False)
    (root / "data.csv.gz").write_bytes(gzip.compress((root / "data.csv").read_bytes(), mtime=0))
    df.to_parquet(root / "data.parquet", index=False)
    parts = root / "parts"
    parts.mkdir()
    for i, start in enumerate(range(0, len(df), 20)):
        df.iloc[start : start + 20].to_parquet(parts / f"part-{i:05d}.parquet", index=False)
    (parts / "_SUCCESS").write_bytes(b"")  # what Spark leaves beside its parts: neither hashed nor read
    notes = root / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("no tables here\n")
    private = root / "private"
    private.mkdir()
    shutil.copy(root / "data.csv", private / "data.csv")
    return Tables(root, df)


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the machine's AWS settings, ~/.aws, or the EC2 metadata address."""
    import os

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def s3_endpoint(tables: Tables) -> Iterator[str]:
    """moto's S3 on 127.0.0.1 with the tables uploaded under s3://lrsweep-data/."""
    import boto3

    with moto_server() as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET,
        )
        s3.create_bucket(Bucket=BUCKET)
        for f in sorted(tables.local.rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), BUCKET, f.relative_to(tables.local).as_posix())
        yield endpoint


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses every connection for the test (tests.data.servers.refused_port)."""
    with refused_port() as port:
        yield port


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> str:
    """The environment a user of an S3-compatible store has: endpoint and keys in the standard variables."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return s3_endpoint


@pytest.fixture(scope="session")
def s3_with_auth() -> Iterator[str]:
    """A second moto S3 that checks credentials from the first request on (and knows none)."""
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def http_base(tables: Tables) -> Iterator[str]:
    with file_server(tables.local, (HTTP_USER, HTTP_PASSWORD)) as base:
        yield base


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory, tables: Tables) -> Iterator[tuple[str, Path]]:
    """An HTTPS server with a self-signed certificate: (base URL, certificate file)."""
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    with file_server(tables.local, (HTTP_USER, HTTP_PASSWORD), cert=(cert, key)) as base:
        yield base, cert

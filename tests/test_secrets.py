"""No secret anywhere (issue 12): recognisable fake credentials are planted everywhere a user puts them, a real
multirun sweep and an export run, and every byte they wrote is searched for them.

Planted: passwords in the tracking URI and in the study storage URI (both a real PostgreSQL server, which trusts
loopback and ignores them), a config value under a key named like a secret (`cluster.spark_conf`'s S3 secret key),
and AWS keys in the environment. Searched: the terminal output of every command, every file under the working
directory (MLflow artifacts, Hydra's and lrsweep's folders), the exported bundle, and a dump of both databases.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_helpers import run_cli

pytestmark = pytest.mark.slow

PLANTED = {
    "tracking password": "PwTrack7xQz",
    "study password": "PwStudy7xQz",
    "spark secret key": "PwSpark7xQz",
    "AWS secret key": "AwsSecret7xQzFAKEFAKEFAKEFAKEFAKEFAKE",
    "AWS access key id": "AKIALRSWEEPFAKE7XQZ",
}


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str, Path]]:
    """(MLflow database URL, Optuna database URL, folder of PostgreSQL's programs) on one real server."""
    import sqlalchemy

    from tests.postgres_server import pg_bin, postgres_server

    with postgres_server("mlflow") as url:
        engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as con:
            con.execute(sqlalchemy.text("CREATE DATABASE optuna"))
            for role in ("mlflow", "optuna"):  # the users the URIs name (loopback is trusted: no password checked)
                con.execute(sqlalchemy.text(f"CREATE ROLE {role} LOGIN SUPERUSER"))
        engine.dispose()
        bin_dir = pg_bin()
        assert bin_dir is not None
        yield url, url.rsplit("/", 1)[0] + "/optuna", bin_dir


def _with_password(url: str, user: str, password: str) -> str:
    return url.replace("://postgres@", f"://{user}:{password}@")


def _dump(url: str, bin_dir: Path) -> bytes:
    """Every row of a database, as pg_dump writes it."""
    host_port, db = url.split("@", 1)[1].split("/", 1)
    host, port = host_port.split(":")
    return subprocess.run(
        [str(bin_dir / "pg_dump"), "-h", host, "-p", port, "-U", "postgres", "--data-only", db],
        check=True, capture_output=True, timeout=120,
    ).stdout  # fmt: skip


def test_no_planted_secret_reaches_any_byte_a_sweep_and_its_export_wrote(tmp_path: Path, databases):
    from mlflow import MlflowClient

    mlflow_db, optuna_db, bin_dir = databases
    tracking = _with_password(mlflow_db, "mlflow", PLANTED["tracking password"])
    storage = _with_password(optuna_db, "optuna", PLANTED["study password"])
    env = {
        "AWS_ACCESS_KEY_ID": PLANTED["AWS access key id"],
        "AWS_SECRET_ACCESS_KEY": PLANTED["AWS secret key"],
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    args = [
        "-m", "seed=1,2", "search=l2", "search.n_trials=2", "progress=false", f"tracking.uri={tracking}",
        f"study.storage={storage}",
        f"+cluster.spark_conf={{spark.hadoop.fs.s3a.secret.key:{PLANTED['spark secret key']}}}",
    ]  # fmt: skip
    sweep = run_cli(args, tmp_path, env_extra=env)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_db)
    (experiment,) = [e for e in client.search_experiments() if e.name == "lrsweep-telco_churn"]
    parents = client.search_runs([experiment.experiment_id], filter_string="tags.`lrsweep.kind` = 'sweep'")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    # what was planted is recorded, masked: the check below is not vacuous
    config = client.download_artifacts(parents[0].info.run_id, "config.yaml", str(tmp_path / "read-back"))
    text = Path(config).read_text()
    assert "secret.key: '***'" in text or "secret.key: ***" in text, text[:2000]
    assert "optuna:***@127.0.0.1" in parents[0].data.params["study.storage"]

    bundle = tmp_path / "bundle"
    export = run_cli(
        ["export", parents[0].info.run_id, "--out", str(bundle), "--no-pdf", "--tracking-uri", tracking],
        tmp_path, env_extra=env,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr[-3000:]
    assert (bundle / "config.yaml").is_file() and (bundle / "model" / "MLmodel").is_file()

    written = b"".join(f.read_bytes() for f in sorted(tmp_path.rglob("*")) if f.is_file())
    written += (sweep.stdout + sweep.stderr + export.stdout + export.stderr).encode()
    written += _dump(mlflow_db, bin_dir) + _dump(optuna_db, bin_dir)
    assert b"lrsweep_worker" in written and b"config.yaml" in written  # the dumps and the artifacts are in it
    leaked = [what for what, secret in PLANTED.items() if secret.encode() in written]
    assert not leaked, f"leaked: {leaked}"

"""lrsweep.redact: no credential survives into what gets logged (MLflow params, config.yaml, messages)."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from lrsweep.config import Config
from lrsweep.redact import REDACTED, looks_secret, redact_mapping, redact_uri, redact_yaml

SECRET = "Hunter2xyz"  # appears nowhere in any expected output


# -- keys -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "passwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "api-key",
        "access_key",
        "AWS_SECRET_ACCESS_KEY",
        "private_key",
        "credentials",
        "auth",
        "tracking.password",
        # Spark settings (cluster.spark_conf) are dotted keys whose last part alone says little
        "spark.hadoop.fs.s3a.secret.key",
        "spark.hadoop.fs.s3a.access.key",
        "spark.hadoop.fs.s3a.session.token",
        "fs.azure.account.key.myaccount.dfs.core.windows.net",
    ],
)
def test_credential_keys_look_secret(key):
    assert looks_secret(key)


@pytest.mark.parametrize(
    "key",
    ["name", "uri", "path", "target", "positive", "seed", "storage", "experiment", "master", "spark.executor.memory"],
)
def test_ordinary_keys_do_not_look_secret(key):
    assert not looks_secret(key)


def _leaf_keys(obj) -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        out.append(f.name)
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out += _leaf_keys(v)
    return out


def test_no_lrsweep_config_key_is_mistaken_for_a_secret():
    cfg = Config()
    assert not [k for k in _leaf_keys(cfg) if looks_secret(k)]
    plain = dataclasses.asdict(cfg)
    assert redact_mapping(plain) == plain


# -- URIs -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "want"),
    [
        (f"postgresql://mlflow:{SECRET}@db.example.com:5432/mlflow", "postgresql://mlflow:***@db.example.com:5432/mlflow"),
        (f"mysql+pymysql://u:{SECRET}@h/optuna", "mysql+pymysql://u:***@h/optuna"),
        (f"https://user:{SECRET}@mlflow.example.com", "https://user:***@mlflow.example.com"),
        (f"https://user.name:{SECRET}@host/p?q=1", "https://user.name:***@host/p?q=1"),
        (f"redis://:{SECRET}@localhost:6379/0", "redis://:***@localhost:6379/0"),  # password only
        (f"postgresql://u:p@{SECRET}@host/db", "postgresql://u:***@host/db"),  # an unescaped @ in the password
        (f"https://host/x?token={SECRET}&a=1", "https://host/x?token=***&a=1"),
        (f"https://host/x?a=1&PASSWORD={SECRET}", "https://host/x?a=1&PASSWORD=***"),
        (f"https://acct.blob.core.windows.net/c/f?sv=2022&sig={SECRET}%2B&se=1", "https://acct.blob.core.windows.net/c/f?sv=2022&sig=***&se=1"),
        (
            f"cannot reach postgresql://a:{SECRET}@h1/db nor https://b:{SECRET}@h2 (timeout)",
            "cannot reach postgresql://a:***@h1/db nor https://b:***@h2 (timeout)",
        ),
    ],
)  # fmt: skip
def test_uri_passwords_are_hidden(text, want):
    got = redact_uri(text)
    assert got == want
    assert SECRET not in got
    assert redact_uri(got) == got  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:///mlflow.db",
        "file:///tmp/mlruns",
        "http://localhost:5000",
        "http://127.0.0.1:5000/#/experiments/1",
        "postgresql://user@host/db",
        "databricks",
        "lrsweep_studies/study.journal",
        "https://host/x?page=2&sort=asc",
        "s3://bucket/data/part-0.parquet",
        "C=0.1 l1 saga balanced",
    ],
)
def test_texts_without_credentials_are_unchanged(text):
    assert redact_uri(text) == text


# -- mappings ---------------------------------------------------------------------------------------------
def test_nested_mapping():
    data = {
        "tracking": {"uri": f"postgresql://u:{SECRET}@h/db", "password": SECRET, "token": None, "api_key": ""},
        "items": [f"https://u:{SECRET}@h", {"secret": SECRET}, 3],
        "pair": ("a", f"mysql://u:{SECRET}@h/x"),
        "credentials": {"user": "alice", "key": SECRET},
        "n": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
    }
    before = copy.deepcopy(data)
    got = redact_mapping(data)
    assert data == before  # the input is not modified
    assert got == {
        "tracking": {"uri": "postgresql://u:***@h/db", "password": REDACTED, "token": None, "api_key": ""},
        "items": ["https://u:***@h", {"secret": REDACTED}, 3],
        "pair": ("a", "mysql://u:***@h/x"),
        "credentials": REDACTED,
        "n": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
    }
    assert isinstance(got["pair"], tuple)
    assert SECRET not in json.dumps(got)


def test_numeric_secret_values_are_hidden_too():
    assert redact_mapping({"password": 123456}) == {"password": REDACTED}


def test_a_config_carrying_credentials_logs_none_of_them():
    """What sweep.py logs: redact_mapping(dataclasses.asdict(cfg))."""
    cfg = Config()
    cfg.tracking.uri = f"postgresql://mlflow:{SECRET}@db:5432/mlflow"
    cfg.study.storage = f"mysql://optuna:{SECRET}@db/optuna"
    cfg.dataset.path = f"https://reader:{SECRET}@files.example.com/data.csv"
    cfg.cluster.spark_conf = {
        "spark.hadoop.fs.s3a.access.key": "AKIAEXAMPLE" + SECRET,
        "spark.hadoop.fs.s3a.secret.key": SECRET,
        "spark.executor.memory": "2g",
    }
    got = redact_mapping(dataclasses.asdict(cfg))
    assert SECRET not in json.dumps(got)
    assert got["cluster"]["spark_conf"]["spark.executor.memory"] == "2g"
    assert got["tracking"]["uri"] == "postgresql://mlflow:***@db:5432/mlflow"
    assert got["search"] == dataclasses.asdict(cfg.search)


def test_text_redaction_covers_hydra_s_escaped_overrides():
    from lrsweep.redact import redact_text

    line = f"#0 : search=l2 tracking.uri=postgresql\\://u\\:{SECRET}@h/db +cluster.spark_conf.s3_secret_key={SECRET}"
    got = redact_text(line)
    assert SECRET not in got
    assert "tracking.uri=postgresql://u:***@h/db" in got and "search=l2" in got
    assert "+cluster.spark_conf.s3_secret_key=***" in got


def test_text_redaction_covers_a_dict_override_s_secret_entries():
    """Hydra's multirun line printed a dict override's entries as given (found by tests/test_secrets.py)."""
    from lrsweep.redact import redact_text

    line = f"#0 : seed=1 +cluster.spark_conf={{spark.hadoop.fs.s3a.secret.key:{SECRET},spark.executor.memory:2g}}"
    got = redact_text(line)
    assert SECRET not in got
    assert got == "#0 : seed=1 +cluster.spark_conf={spark.hadoop.fs.s3a.secret.key:***,spark.executor.memory:2g}"
    assert redact_text("at 10:30, http://h:5000 {a: 1}") == "at 10:30, http://h:5000 {a: 1}"  # nothing else


def test_the_logging_filter_redacts_every_record(caplog: pytest.LogCaptureFixture):
    import logging

    from lrsweep.redact import RedactingFilter

    logger = logging.getLogger("lrsweep.test_redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="lrsweep.test_redact"):
        logger.info("overrides: %s", f"tracking.uri=https://u:{SECRET}@mlflow.example.com")
    assert SECRET not in caplog.text and "https://u:***@mlflow.example.com" in caplog.text


def test_a_yaml_file_is_logged_with_credential_values_masked_and_its_comments_kept():
    text = (
        "# @package _global_\n# a question\ntracking:\n"
        f"  uri: postgresql://u:{SECRET}@db/x   # the store\n"
        "cluster:\n  spark_conf:\n"
        f"    spark.hadoop.fs.s3a.secret.key: {SECRET}  # masked\n"
        f"    spark.sql.shuffle.partitions: 4\n  token: '{SECRET}'\n  - password: {SECRET}\nseed: 42\n"
    )
    got = redact_yaml(text)
    assert SECRET not in got
    assert "uri: postgresql://u:***@db/x   # the store" in got and "secret.key: ***  # masked" in got
    assert "token: ***" in got and "- password: ***" in got
    assert "# a question" in got and "spark.sql.shuffle.partitions: 4" in got and "seed: 42" in got

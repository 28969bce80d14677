"""Fixtures for the launch tests: one moto server (S3 and EMR over HTTP on 127.0.0.1) that records every request
it receives, reset before each test; planted fake credentials; configs composed as the CLI composes them.

The code under test is not patched: boto3 finds moto through the standard AWS_ENDPOINT_URL variable, and the
fake keys through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. The recording (moto's own request recorder) shows
what went over the wire, e.g. the RunJobFlow body with its auto-termination policy, which moto does not keep.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.data.servers import moto_server
from tests.launch.fakes import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, Moto


@pytest.fixture(scope="session")
def moto_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    recording = tmp_path_factory.mktemp("moto") / "recording.jsonl"
    extra = {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)}
    with moto_server(extra) as endpoint:
        yield Moto(endpoint, recording)


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the machine's AWS settings, ~/.aws, or the EC2 metadata address."""
    for key in [k for k in os.environ if k.startswith(("AWS_", "MLFLOW_TRACKING_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _wheel_cache_env(monkeypatch: pytest.MonkeyPatch, wheel_cache: Path) -> None:
    """The wheel is built once per session, into the session's cache, not the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(wheel_cache))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_session: Moto) -> Moto:
    """moto reset, the planted keys in the standard variables, and the staging bucket created."""
    moto_session.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_session.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    moto_session.client("s3").create_bucket(Bucket=BUCKET)
    moto_session.post("/moto-api/recorder/reset-recording")  # the tests' own setup is not what they look at
    return moto_session


@functools.cache
def _composed(overrides: tuple[str, ...], conf_free_dir: str) -> Any:
    from hydra import compose, initialize_config_dir

    import lrsweep
    from lrsweep.cli import register_configs, to_config

    register_configs(Path(conf_free_dir))  # a folder without conf/ or experiments/: the shipped options only
    conf = (Path(lrsweep.__file__).parent / "conf").resolve()
    with initialize_config_dir(version_base="1.3", config_dir=str(conf)):
        return to_config(compose("config", overrides=list(overrides)))


@pytest.fixture(scope="session")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """compose(*overrides) -> a fresh typed Config of ``lrsweep launch OVERRIDES`` (as the CLI composes it)."""
    folder = str(tmp_path_factory.mktemp("compose-here"))

    def make(*overrides: str) -> Any:
        return copy.deepcopy(_composed(tuple(overrides), folder))

    return make


@pytest.fixture(scope="session")
def built_wheel(wheel_cache: Path) -> Path:
    """The checkout's wheel, built once per session into the session's cache."""
    from lrsweep.launch.package import find_package

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(wheel_cache))
        return find_package(None).wheel()

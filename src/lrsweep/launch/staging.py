"""What a launch writes to S3, and the two commands a cluster runs: the install and the step.

Layout, under ``cluster.s3_uri``::

    <s3_uri>/<launch id>/lrsweep-VERSION-py3-none-any.whl   the package
    <s3_uri>/<launch id>/config.yaml                        the typed config, credentials masked
    <s3_uri>/<launch id>/install.sh                         the bootstrap action: installs the wheel
    <s3_uri>/logs/                                          EMR's logs (cluster.log_uri's default)

The staged config is ``dataclasses.asdict(cfg)`` through :func:`lrsweep.redact.redact_mapping`: no credential is
ever written to S3. The cluster supplies its own: AWS access through the nodes' instance profile
(``cluster.instance_profile``), an MLflow server's login through ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` in the step's environment. The step (``lrsweep.launch.step``) reads the config back.

The launch id is ``launch.id``, else the study's name and a digest of the staged config and the package: the
same config and source give the same keys and the same request, so a dry run shows exactly what a launch sends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lrsweep.errors import LrsweepError
from lrsweep.redact import redact_mapping

if TYPE_CHECKING:
    from lrsweep.config import Config
    from lrsweep.launch.package import Package

__all__ = ["Staging", "plan_staging", "config_text", "split_s3_uri", "INSTALL_SCRIPT", "step_args", "install_args"]

CONFIG_NAME = "config.yaml"
INSTALL_NAME = "install.sh"
STEP_MODULE = "lrsweep.launch.step"

# The bootstrap action. EMR runs it on every node of a transient cluster before any step; a step on an existing
# cluster runs it on the primary node; the rehearsal runs it with a fresh virtual environment's interpreter.
INSTALL_SCRIPT = r"""#!/usr/bin/env bash
# lrsweep install: puts lrsweep, from the wheel a launch staged in S3, into an interpreter on this machine.
# Usage: install.sh WHEEL_S3_URI PYTHON [EXTRAS]
#   e.g. install.sh s3://b/p/id/lrsweep-0.1.0-py3-none-any.whl python3.11 spark,s3
# It holds no credential: S3 is read with the machine's own (an EMR node's instance profile, or the environment).
set -euo pipefail
wheel_uri="$1"
python="$2"
extras="${3:-}"

if ! command -v "$python" >/dev/null 2>&1; then
  # EMR 7 runs Amazon Linux 2023, whose python3 is 3.9; lrsweep needs 3.11 or later
  sudo dnf install -y -q "$python" "$python-pip"
fi

dest="$(mktemp -d)"
wheel="$dest/${wheel_uri##*/}"
if aws --version >/dev/null 2>&1; then
  aws s3 cp --only-show-errors "$wheel_uri" "$wheel"
else  # no AWS CLI: boto3 in the interpreter (reachable by the rehearsal's environment)
  "$python" - "$wheel_uri" "$wheel" <<'EOF'
import sys
import boto3
bucket, _, key = sys.argv[1][len("s3://"):].partition("/")
boto3.client("s3").download_file(bucket, key, sys.argv[2])
EOF
fi

# a system interpreter is installed into as root; a virtual environment as its owner
sudo=""
if "$python" -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)' && [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
$sudo "$python" -m pip install --quiet --disable-pip-version-check "$wheel${extras:+[$extras]}"
"$python" -c 'import lrsweep; print("lrsweep", lrsweep.__version__, "installed in", lrsweep.__file__)'
rm -rf "$dest"
"""


@dataclass(frozen=True)
class Staging:
    """The launch id, the S3 objects (role -> URI) and the staged config's text."""

    id: str
    prefix: str  # s3://BUCKET/PREFIX/<id>
    uris: dict[str, str]  # wheel, config, bootstrap -> s3://...
    config: str  # config.yaml's text

    def objects(self, wheel_bytes: bytes) -> list[tuple[str, bytes]]:
        """(URI, body) of every object to write, the wheel first."""
        return [
            (self.uris["wheel"], wheel_bytes),
            (self.uris["config"], self.config.encode()),
            (self.uris["bootstrap"], INSTALL_SCRIPT.encode()),
        ]


def config_text(cfg: Config) -> str:
    """The staged config: the typed config as YAML, with credential-like values masked."""
    import yaml

    return yaml.safe_dump(redact_mapping(dataclasses.asdict(cfg)), sort_keys=False)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b``)."""
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not m or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", m.group(1)):
        raise LrsweepError(f"{uri!r} does not name an S3 bucket", "use cluster.s3_uri=s3://BUCKET/PREFIX")
    return m.group(1), m.group(2).strip("/")


def plan_staging(cfg: Config, package: Package) -> Staging:
    """Where this launch's objects go (nothing is written here)."""
    from lrsweep.config import study_name

    base = str(cfg.cluster.s3_uri or "").rstrip("/")
    split_s3_uri(base)
    text = config_text(cfg)
    launch_id = cfg.launch.id or _derived_id(study_name(cfg), text, package.digest)
    prefix = f"{base}/{launch_id}"
    uris = {
        "wheel": f"{prefix}/{package.name}",
        "config": f"{prefix}/{CONFIG_NAME}",
        "bootstrap": f"{prefix}/{INSTALL_NAME}",
    }
    return Staging(id=launch_id, prefix=prefix, uris=uris, config=text)


def _derived_id(study: str, text: str, package_digest: str) -> str:
    digest = hashlib.sha256(f"{text}\0{package_digest}".encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", study).strip("-._")[:80] or "sweep"
    return f"{slug}-{digest}"


# -- the commands --------------------------------------------------------------------------------------------
def step_args(python: str, config_uri: str) -> list[str]:
    """The step: the sweep's driver, started on the primary node (client mode) from the staged config."""
    return [python, "-m", STEP_MODULE, config_uri]


def install_args(staging: Staging, python: str, extras: list[str]) -> list[str]:
    """The bootstrap action's arguments (after the script): the wheel's URI, the interpreter, the extras."""
    return [staging.uris["wheel"], python, ",".join(extras)]


def existing_cluster_step_args(staging: Staging, python: str, extras: list[str]) -> list[str]:
    """A running cluster had no bootstrap action: its step installs the wheel on the primary node first, then
    runs the step, which ships the installed package to the executors (``--ship-package``)."""
    script = f"/tmp/lrsweep-{staging.id}-{INSTALL_NAME}"
    install = shlex.join(["bash", script, *install_args(staging, python, extras)])
    fetch = shlex.join(["aws", "s3", "cp", "--only-show-errors", staging.uris["bootstrap"], script])
    run = shlex.join([python, "-m", STEP_MODULE, "--ship-package", staging.uris["config"]])
    return ["bash", "-c", f"set -euo pipefail; {fetch}; {install}; exec {run}"]

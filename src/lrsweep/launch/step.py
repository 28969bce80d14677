"""The launched step's entry point: ``python -m lrsweep.launch.step s3://BUCKET/PREFIX/ID/config.yaml``.

It runs where the sweep's driver runs (the EMR primary node in client mode, or the rehearsal's fresh virtual
environment), from the installed wheel: it reads the staged config back, re-types it into the same
:class:`~lrsweep.config.Config` the launch staged, lets the cluster supply the credentials the staged copy masks,
and runs :func:`lrsweep.sweep.run_sweep`. Like ``cli.py`` it is an edge module: it may use omegaconf, which
checks every key and type of the YAML against the schemas while re-typing it.

Credentials: the staged config has none (``***`` in their place). An MLflow server's login comes from
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` in the step's environment, S3 and other AWS access
from the node's instance profile; masked ``cluster.spark_conf`` values are dropped, so the cluster's own apply.

Exit status: 0 after a sweep, 2 with one ``lrsweep: error:`` line for a user error (as the CLI).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lrsweep.errors import LrsweepError
from lrsweep.redact import REDACTED, redact_uri

if TYPE_CHECKING:
    from lrsweep.config import Config

__all__ = ["main", "config_from_yaml", "read_config", "for_this_cluster", "ship_package"]

EXIT_USAGE = 2
log = logging.getLogger("lrsweep")


def config_from_yaml(text: str) -> Config:
    """The staged YAML as a typed Config: each group's schema chosen by ``backend.name``, ``cluster.name`` and
    ``threshold.strategy``, then every key and type checked by omegaconf against it."""
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from lrsweep.backends import schemas
    from lrsweep.clusters import CLUSTERS
    from lrsweep.config import Config
    from lrsweep.thresholds import STRATEGIES

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LrsweepError(f"the staged config is not valid YAML ({exc})", "launch again") from None
    if not isinstance(data, dict):
        raise LrsweepError("the staged config is not a mapping", "launch again")
    schema = Config(
        backend=_option(schemas(), data, "backend", "name")(),
        cluster=_option(CLUSTERS, data, "cluster", "name")(),
        threshold=_option(STRATEGIES, data, "threshold", "strategy")(),
    )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), data)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LrsweepError(
            f"the staged config does not fit this lrsweep's schema ({first})",
            "launch with the lrsweep version the wheel holds",
        ) from None
    assert isinstance(cfg, Config)
    return cfg


def _option(options: dict[str, Any], data: dict[str, Any], group: str, key: str) -> Any:
    name = (data.get(group) or {}).get(key)
    if name not in options:
        raise LrsweepError(
            f"the staged config's {group}.{key}={name!r} is not known here", f"use one of: {', '.join(options)}"
        )
    return options[name]


def read_config(uri: str) -> Config:
    """Read the staged config from ``uri`` (s3://..., or a local path) and re-type it."""
    import fsspec

    shown = redact_uri(uri)
    try:
        with fsspec.open(uri, "rb") as fh:
            text = fh.read().decode("utf-8")
    except FileNotFoundError:
        raise LrsweepError(
            f"the staged config {shown} does not exist", "launch again: it stages the config first"
        ) from None
    except ImportError:
        raise LrsweepError(f"reading {shown} needs s3fs, which is not installed", "pip install 'lrsweep[s3]'") from None
    except Exception as exc:
        detail = redact_uri(" ".join(str(exc).split()))[:200]
        raise LrsweepError(
            f"cannot read the staged config {shown}: {type(exc).__name__}: {detail}",
            "check this machine's AWS access (an EMR node's instance profile)",
        ) from None
    return config_from_yaml(text)


def for_this_cluster(cfg: Config) -> list[str]:
    """Put the cluster's own credentials where the staged config masks them; notes on what was done."""
    notes = []
    masked = sorted(k for k, v in cfg.cluster.spark_conf.items() if v == REDACTED)
    for key in masked:
        del cfg.cluster.spark_conf[key]
    if masked:
        notes.append(f"cluster.spark_conf {', '.join(masked)}: masked at launch, the cluster's own settings apply")
    uri = cfg.tracking.uri
    if uri and REDACTED in (urlsplit(uri).password or ""):
        parts = urlsplit(uri)
        if parts.username and not os.environ.get("MLFLOW_TRACKING_USERNAME"):
            os.environ["MLFLOW_TRACKING_USERNAME"] = parts.username
        cfg.tracking.uri = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        if not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
            notes.append("tracking.uri's password is never staged, and MLFLOW_TRACKING_PASSWORD is not set here")
    return notes


def prepare_environment(cfg: Config) -> None:
    """Spark's Python workers run this interpreter (where the bootstrap installed lrsweep on every node), and a
    YARN master is found through the node's Hadoop configuration."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if cfg.cluster.master == "yarn" and not os.environ.get("HADOOP_CONF_DIR") and Path("/etc/hadoop/conf").is_dir():
        os.environ["HADOOP_CONF_DIR"] = "/etc/hadoop/conf"  # EMR's; pip's pyspark has no other way to find YARN
        os.environ.setdefault("YARN_CONF_DIR", "/etc/hadoop/conf")


def ship_package(cfg: Config, folder: Path | None = None) -> Path:
    """Zip the installed lrsweep package and add it to ``spark.submit.pyFiles``: on a cluster no bootstrap action
    prepared, the executors import lrsweep from it (their Python needs its dependencies, pandas and pyarrow)."""
    import lrsweep

    package = Path(lrsweep.__file__).parent
    folder = folder or Path(tempfile.mkdtemp(prefix="lrsweep-pyfiles-"))
    archive = folder / f"lrsweep-{lrsweep.__version__}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, path.relative_to(package.parent).as_posix())
    conf = cfg.cluster.spark_conf
    conf["spark.submit.pyFiles"] = ",".join(p for p in (conf.get("spark.submit.pyFiles", ""), str(archive)) if p)
    return archive


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lrsweep.launch.step", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the staged config.yaml (s3://BUCKET/PREFIX/ID/config.yaml)")
    parser.add_argument(
        "--ship-package", action="store_true", help="send the installed lrsweep to the executors (spark.submit.pyFiles)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    import lrsweep

    args = _parser().parse_args(argv)
    if not any(getattr(h, "lrsweep_step", False) for h in log.handlers):  # once per process
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s lrsweep: %(message)s"))
        handler.lrsweep_step = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    print(f"lrsweep {lrsweep.__version__} from {lrsweep.__file__}", flush=True)
    try:
        cfg = read_config(args.config)
        for note in for_this_cluster(cfg):
            log.warning(note)
        prepare_environment(cfg)
        if args.ship_package:
            log.info("executors import lrsweep from %s", ship_package(cfg))
        from lrsweep.report import format_summary
        from lrsweep.sweep import run_sweep

        result = run_sweep(cfg)
    except LrsweepError as exc:
        print(f"lrsweep: error: {exc.line()}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    print(format_summary(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

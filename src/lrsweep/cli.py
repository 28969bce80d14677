"""The command line: the only module that imports Hydra.

It composes the config, converts it once to the typed :class:`lrsweep.config.Config` and calls
:func:`lrsweep.sweep.run_sweep`. Every user error ends as one line on stderr with exit status 2
(130 when interrupted); ``debug=true`` or ``LRSWEEP_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

from lrsweep.errors import LrsweepError

__all__ = ["main", "to_config", "register_configs"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
log = logging.getLogger("lrsweep")


def register_configs() -> None:
    """The typed schemas in Hydra's ConfigStore: the whole config as ``lrsweep_schema``, and each option of the
    groups whose options differ as ``schema/<group>/<option>`` (the option's YAML names it in its defaults)."""
    from hydra.core.config_store import ConfigStore

    from lrsweep.backends import BackendConfig, schemas
    from lrsweep.clusters import CLUSTERS, ClusterConfig
    from lrsweep.config import Config
    from lrsweep.thresholds import STRATEGIES, ThresholdConfig

    cs = ConfigStore.instance()
    # Those groups start from their base schema, so that the option chosen can merge its subclass in.
    base = Config(backend=BackendConfig(), cluster=ClusterConfig(), threshold=ThresholdConfig())
    cs.store(name="lrsweep_schema", node=base)
    for group, options in (("backend", schemas()), ("cluster", CLUSTERS), ("threshold", STRATEGIES)):
        for name, schema in options.items():
            cs.store(group=f"schema/{group}", name=name, node=schema)


def _extra_keys(node: Any, obj: Any, prefix: str = "") -> list[str]:
    """Keys of the composed config that the typed object has no field for (added with ``+key=value``)."""
    import dataclasses

    from omegaconf import DictConfig

    if not dataclasses.is_dataclass(obj):
        return []
    names = {f.name for f in dataclasses.fields(obj)}
    out: list[str] = []
    for key in node:
        if key not in names:
            out.append(f"{prefix}{key}")
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            out += _extra_keys(child, getattr(obj, str(key)), f"{prefix}{key}.")
    return out


def to_config(dcfg: Any) -> Any:
    """DictConfig -> typed Config (raises LrsweepError for a missing value or a key no schema has)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue

    from lrsweep.config import Config

    try:
        cfg = OmegaConf.to_object(dcfg)
    except MissingMandatoryValue as exc:
        key = getattr(exc, "full_key", "") or "a value"
        raise LrsweepError(f"{key} is required here but not set", f"add {key}=VALUE to the command") from exc
    assert isinstance(cfg, Config)
    extra = _extra_keys(dcfg, cfg)
    if extra:
        raise LrsweepError(
            f"unknown config key {extra[0]!r}", "run `lrsweep --cfg job` to see the valid keys (and drop the + prefix)"
        )
    return cfg


def _debug() -> bool:
    return os.environ.get("LRSWEEP_DEBUG", "") not in ("", "0") or any(
        a in ("debug=true", "debug=True") for a in sys.argv
    )


def _die(line: str, code: int = EXIT_USAGE) -> None:
    print(f"lrsweep: error: {line}", file=sys.stderr)
    sys.exit(code)


def _task(dcfg: Any) -> float | None:
    from lrsweep.report import format_summary
    from lrsweep.sweep import run_sweep

    try:
        cfg = to_config(dcfg)
        result = run_sweep(cfg)
    except LrsweepError as exc:
        if _debug():
            raise
        _die(exc.line())
    except KeyboardInterrupt:
        _die("interrupted; run the same command again to resume where it stopped", EXIT_INTERRUPTED)
    print(format_summary(result))
    return result.best_value


def _hydra_line(exc: BaseException) -> str:
    """One line out of Hydra's and OmegaConf's multi-line messages."""
    text = str(exc)
    m = re.search(r"Could not find '([^']+)'.*?Available options in '([^']+)':(.*)", text, re.S)
    if m:
        block = m.group(3).split("Config search path")[0]  # the options, not Hydra's search path
        options = ", ".join(o.strip() for o in block.split() if o.strip())
        group = m.group(2)
        return f"unknown option {m.group(1).split('/')[-1]!r} for config group {group!r}; use one of: {options}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if "mismatched input" in first or "token recognition error" in first:
        return (
            f"cannot parse an override ({first}); quote a value holding brackets, commas or spaces inside the "
            "argument, e.g. \"cluster.master='local[2]'\""
        )
    cause = exc.__cause__
    detail = ""
    if cause is not None and str(cause).strip():
        detail = str(cause).strip().splitlines()[0]
    if "not in struct" in (detail + first) or "Could not override" in first or "Key '" in detail:
        key = re.search(r"'([^']+)'", first)
        name = key.group(1) if key else "?"
        return f"unknown config key {name!r} ({detail or first}); run `lrsweep --cfg job` to see the valid keys"
    return (
        f"{first}{': ' + detail if detail and detail not in first else ''}; run `lrsweep --cfg job` to check the config"
    )


def main() -> None:
    """Console entry point ``lrsweep``."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    # Hydra's own report of a composition error is several lines; let it raise so we print one.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    logging.captureWarnings(True)
    register_configs()
    app = hydra.main(config_path="conf", config_name="config", version_base="1.3")(_task)
    try:
        app()
    except (HydraException, OmegaConfBaseException) as exc:
        if _debug():
            raise
        _die(_hydra_line(exc))
    except LrsweepError as exc:
        if _debug():
            raise
        _die(exc.line())


if __name__ == "__main__":
    main()

"""The command line: the only module that imports Hydra.

It composes the config, converts it once to the typed :class:`lrsweep.config.Config` and calls
:func:`lrsweep.sweep.run_sweep`. Every user error ends as one line on stderr with exit status 2
(130 when interrupted); ``debug=true`` or ``LRSWEEP_DEBUG=1`` shows the traceback instead.

Commands: ``lrsweep [OVERRIDES]`` runs a sweep; ``lrsweep plan [OVERRIDES]`` predicts a Spark sweep's time and
cost (a multirun over cluster sizes prints a table to choose from); ``lrsweep launch [--dry-run] [OVERRIDES]``
plans, checks the budget, and submits the sweep to EMR (``cluster=emr``) or rehearses it on a standalone
cluster (``cluster=standalone``). Three commands only read MLflow (argparse, dispatched before Hydra):
``lrsweep compare [EXPERIMENT ...]`` lists the sweeps side by side (:mod:`lrsweep.compare`), ``lrsweep reproduce
RUN_ID`` re-runs a logged result and checks it (:mod:`lrsweep.reproduce`), ``lrsweep export RUN_ID --out DIR``
writes a hand-in bundle (:mod:`lrsweep.export`).

Configs come from three places: the options shipped in the package (``lrsweep/conf``); the working
directory's ``conf/<group>/<option>.yaml`` (a project's own options, appended to Hydra's search path; one
with a shipped option's name is refused); and the working directory's ``experiments/<name>.yaml``
(presets, run with ``lrsweep experiment=<name>``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from lrsweep.errors import LrsweepError, Terminated

__all__ = ["main", "to_config", "register_configs"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM
COMMANDS = ("plan", "launch", "compare", "reproduce", "export")  # the first argument; without one, lrsweep sweeps
_RUN: dict[str, Any] = {"command": "sweep", "dry_run": False, "plans": []}
log = logging.getLogger("lrsweep")


USER_CONF_DIR = "conf"  # <cwd>/conf/<group>/<option>.yaml: the project's own options, beside the shipped ones
EXPERIMENTS_DIR = "experiments"  # <cwd>/experiments/<name>.yaml: presets, `lrsweep experiment=<name>`
EXPERIMENT_GROUP = "experiment"
_USER_SEARCH_PATH: list[str] = []  # what the search path plugin adds: file://<cwd>/conf, when it exists


def register_configs(cwd: Path | None = None) -> None:
    """Fill the ConfigStore and the search path for a run from ``cwd`` (default: the working directory).

    Idempotent, and re-pointable: tests may call it again from another directory in the same process.
    """
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    from lrsweep.backends import BackendConfig, schemas
    from lrsweep.clusters import CLUSTERS, ClusterConfig
    from lrsweep.config import Config
    from lrsweep.thresholds import STRATEGIES, ThresholdConfig

    root = Path.cwd() if cwd is None else Path(cwd)
    plugins = Plugins.instance()  # scans Hydra's plugins, which store hydra/launcher/basic etc. in the ConfigStore
    cs = ConfigStore.instance()
    # The groups whose options differ start from their base schema, so the option chosen can merge its own
    # subclass in (schema/<group>/<option>, named in the option's defaults list).
    cs.store(
        name="lrsweep_schema",
        node=Config(backend=BackendConfig(), cluster=ClusterConfig(), threshold=ThresholdConfig()),
    )
    for group, options in (("backend", schemas()), ("cluster", CLUSTERS), ("threshold", STRATEGIES)):
        for name, schema in options.items():
            cs.store(group=f"schema/{group}", name=name, node=schema)
    conf = root / USER_CONF_DIR
    _check_user_conf(conf)  # after every ConfigStore entry but the experiments: it checks against them
    _USER_SEARCH_PATH[:] = [f"file://{conf.resolve().as_posix()}"] if conf.is_dir() else []
    plugins.register(_user_conf_plugin())  # registers once; a no-op on later calls
    _register_experiments(root / EXPERIMENTS_DIR)


@functools.cache
def _user_conf_plugin() -> type:
    """A SearchPathPlugin registered at run time (not discovered through hydra_plugins): it appends the
    working directory's conf/ after the package's, so only this CLI sees it and only when it exists."""
    from hydra.core.config_search_path import ConfigSearchPath
    from hydra.plugins.search_path_plugin import SearchPathPlugin

    class LrsweepUserConf(SearchPathPlugin):
        def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
            for path in _USER_SEARCH_PATH:
                search_path.append(provider="lrsweep ./conf", path=path)

    return LrsweepUserConf


def _shipped(rel: str) -> bool:
    """Whether lrsweep, Hydra or the ConfigStore already has the config ``rel`` (e.g. 'dataset/ctr.yaml')."""
    from importlib.resources import files

    from hydra.core.config_store import ConfigStore
    from hydra.core.object_type import ObjectType

    for package in ("lrsweep.conf", "hydra.conf"):
        node = files(package)
        for part in rel.split("/"):
            node = node.joinpath(part)
        if node.is_file():
            return True
    return ConfigStore.instance().get_type(rel) == ObjectType.CONFIG


def _check_user_conf(conf: Path) -> None:
    """Refuse a conf/ file that Hydra would silently ignore: one with a shipped config's group and name."""
    if not conf.is_dir():
        return
    if (conf / EXPERIMENT_GROUP).is_dir():
        raise LrsweepError(
            f"{USER_CONF_DIR}/{EXPERIMENT_GROUP}/ is not read: experiments live in {EXPERIMENTS_DIR}/NAME.yaml",
            f"move its files to {EXPERIMENTS_DIR}/ (run one with `lrsweep experiment=NAME`)",
        )
    shadows = []
    for f in sorted(conf.rglob("*.yaml")):
        rel = f.relative_to(conf).as_posix()
        if _shipped(rel):
            shadows.append(rel)
    if shadows:
        first = shadows[0]
        group, _, name = first.rpartition("/")
        name = name.removesuffix(".yaml")
        what = f"{group}={name}" if group else f"the top-level config {name!r}"
        more = f" (and {', '.join(f'{USER_CONF_DIR}/{s}' for s in shadows[1:])})" if len(shadows) > 1 else ""
        raise LrsweepError(
            f"{USER_CONF_DIR}/{first}{more} has the name of a shipped config ({what}) and would be ignored",
            f"rename it, e.g. {USER_CONF_DIR}/{group + '/' if group else ''}my_{name}.yaml"
            + (f"; it can extend the shipped one with `defaults: [{name}, _self_]`" if group else ""),
        )


def _register_experiments(exp_dir: Path) -> None:
    """experiments/<name>.yaml -> ConfigStore group `experiment`, package _global_ (as `# @package _global_`)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import DictConfig, OmegaConf

    cs = ConfigStore.instance()
    # An empty group, not none: without the group `experiment=x` would be taken as a value override of a key
    # `experiment` ("Could not override 'experiment'... not in 'Config'"); replaced, not merged, so a second
    # call (tests, another directory) forgets the presets of the first.
    cs.repo[EXPERIMENT_GROUP] = {}
    if not exp_dir.is_dir():
        return
    for f in sorted(exp_dir.glob("*.yaml")):
        shown = f"{EXPERIMENTS_DIR}/{f.name}"
        text = f.read_text(encoding="utf-8")
        header = re.search(r"^#\s*@package\s+(\S+)", text, re.M)
        if header and header.group(1) != "_global_":
            raise LrsweepError(f"{shown} says `# @package {header.group(1)}`", "an experiment is `# @package _global_`")
        try:
            node = OmegaConf.create(text)
        except Exception as exc:  # yaml.YAMLError (problem, problem_mark), or OmegaConf's
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
            raise LrsweepError(
                f"{shown}{where} is not valid YAML ({problem})", f"fix it, or move it out of {EXPERIMENTS_DIR}/"
            ) from exc
        if not isinstance(node, DictConfig):
            raise LrsweepError(f"{shown} is not a mapping", "write `key: value` lines, as in conf/ files")
        cs.store(group=EXPERIMENT_GROUP, name=f.stem, node=node, package="_global_", provider=shown)


def _composition_line(text: str) -> str | None:
    """Hydra's "In 'dataset/x': ConfigKeyError raised while composing config:" + the reason on the next line
    (a wrong key in any option, shipped, ./conf or a preset) as one line naming the file."""
    m = re.match(r"(?:In '([^']+)': )?\w+ raised while composing config:\s*\n\s*(.+)", text)
    if not m:
        return None
    where = m.group(1) or "the config"
    if where.startswith(EXPERIMENT_GROUP + "/"):
        where = f"{EXPERIMENTS_DIR}/{where.split('/', 1)[1]}.yaml"
    return f"{where}: {m.group(2).strip()}; run `lrsweep --cfg job` to see the valid keys"


def _experiment_line(text: str) -> str | None:
    """One line for Hydra's errors about experiments, or None (call it first in _hydra_line)."""
    if text.startswith(f"Multiple values for {EXPERIMENT_GROUP}."):  # +experiment=NAME
        return f"the {EXPERIMENT_GROUP} group is in the defaults list: write {EXPERIMENT_GROUP}=NAME, without '+'"
    m = re.search(r"Could not find '" + EXPERIMENT_GROUP + r"/([^']+)'", text)
    if not m:
        return None
    name, where = m.group(1), Path.cwd() / EXPERIMENTS_DIR
    inside = re.match(r"In '" + EXPERIMENT_GROUP + r"/([^']+)'", text)
    if inside and "/" in name:  # `- dataset: x` in a preset is relative to the group experiment/
        group, _, option = name.rpartition("/")
        return (
            f"{EXPERIMENTS_DIR}/{inside.group(1)}.yaml asks for {EXPERIMENT_GROUP}/{name}; "
            f"name a config group from the top, as `- override /{group}: {option}`"
        )
    names = sorted(p.stem for p in where.glob("*.yaml"))
    if not names:
        return f"unknown experiment {name!r}: there is no {where}/*.yaml; write {EXPERIMENTS_DIR}/{name}.yaml"
    return f"unknown experiment {name!r}; use one of: {', '.join(names)} (files in {where})"


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


HELP = """\
lrsweep: experiment-tracked hyperparameter sweeps of logistic regression (Optuna search, MLflow tracking).

Usage:
  lrsweep [OVERRIDES]                 run (or resume) a sweep; the defaults sweep the bundled telco churn data
  lrsweep plan [OVERRIDES]            predict a Spark sweep's time and cost on a cluster (no sweep runs)
  lrsweep launch [--dry-run] [...]    plan, check budget.max_usd, and submit the sweep to EMR (cluster=emr)
  lrsweep compare [EXPERIMENT ...]    the sweeps in MLflow side by side (--sort, --format csv|markdown, --help)
  lrsweep reproduce RUN_ID            re-run a logged sweep or trial from its record and check its metrics
  lrsweep export RUN_ID --out DIR     a self-contained bundle: model, config, command, metrics, report
  lrsweep -m KEY=A,B [...]            a multirun: one sweep per combination (-m before the overrides)

Examples:
  lrsweep search.n_trials=100 threshold=recall_at threshold.min_recall=0.9
  lrsweep dataset=csv dataset.path=data/churn.csv dataset.target=churned dataset.positive=yes
  lrsweep backend=spark search=elasticnet
  lrsweep -m dataset=telco_churn,ctr backend=sklearn,spark
  lrsweep plan backend=spark dataset=ctr cluster=emr cluster.core_nodes=4 budget.max_usd=20

Config groups (GROUP=OPTION):
{groups}

Any value can be set as KEY=VALUE. Every key with its value: lrsweep --cfg job [OVERRIDES]
The same command resumes its study (lrsweep_studies/); runs are in MLflow (`mlflow ui` in this directory).
Errors are one line; debug=true shows the traceback. Hydra's own flags: lrsweep --hydra-help
"""


def _help(cwd: Path) -> str:
    """``lrsweep --help``: what lrsweep does, examples, and the options of every config group (shipped, the
    project's ./conf, its ./experiments presets)."""
    from importlib.resources import files

    options: dict[str, set[str]] = {}
    shipped = files("lrsweep.conf")
    for group in shipped.iterdir():
        if group.is_dir() and group.name not in ("hydra", "__pycache__"):
            options[group.name] = {f.name[:-5] for f in group.iterdir() if f.name.endswith(".yaml")}
    conf = cwd / USER_CONF_DIR
    for f in conf.glob("*/*.yaml") if conf.is_dir() else []:
        options.setdefault(f.parent.name, set()).add(f"{f.stem} (./{USER_CONF_DIR})")
    presets = sorted(f.stem for f in (cwd / EXPERIMENTS_DIR).glob("*.yaml"))
    lines = [f"  {g:<12} {', '.join(sorted(o))}" for g, o in sorted(options.items())]
    lines.append(
        f"  {EXPERIMENT_GROUP:<12} "
        + (", ".join(presets) + f" (./{EXPERIMENTS_DIR})" if presets else f"none yet: ./{EXPERIMENTS_DIR}/NAME.yaml")
    )
    return HELP.format(groups="\n".join(lines))


def _debug() -> bool:
    return os.environ.get("LRSWEEP_DEBUG", "") not in ("", "0") or any(
        a in ("debug=true", "debug=True") for a in sys.argv
    )


def _die(line: str, code: int = EXIT_USAGE) -> None:
    print(f"lrsweep: error: {line}", file=sys.stderr)
    sys.exit(code)


def _plan(cfg: Any, *, log_run: bool) -> Any:
    """Make the plan, log it as its own MLflow run (unless told not to), print it."""
    from lrsweep.planning.plan import make_plan

    plan = make_plan(cfg)
    if log_run and cfg.tracking.enabled:
        plan.run_id = _log_plan(cfg, plan)
    print(plan.text(), flush=True)
    _RUN["plans"].append(plan)
    return plan


def _log_plan(cfg: Any, plan: Any) -> str:
    from lrsweep.redact import redact_uri
    from lrsweep.tracking import log_plan

    try:
        return log_plan(cfg.tracking.uri, plan.record(cfg))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise LrsweepError(
            f"cannot log the plan to MLflow ({redact_uri(str(cfg.tracking.uri or 'sqlite:///mlflow.db'))}): "
            f"{redact_uri(first)}",
            "check tracking.uri and that the server is up, or run with tracking=off",
        ) from exc


def _launch(cfg: Any) -> None:
    from lrsweep.planning.plan import check_budget

    dry_run = bool(_RUN["dry_run"])
    plan = _plan(cfg, log_run=False)
    check_budget(plan)  # over budget: one line, and nothing is created (not even the plan's run)
    from lrsweep.launch import launch

    if not dry_run and cfg.tracking.enabled:
        plan.run_id = _log_plan(cfg, plan)
        print(f"  {'MLflow':<13} plan run {plan.run_id} (the sweep's parent run will link to it)", flush=True)
    cfg.plan.run_id = plan.run_id
    cfg.budget.trial_seconds = plan.sweep.trial.mid  # the guard's first prediction, before a trial is measured
    launch(cfg, dry_run=dry_run, echo=lambda line: print(line, flush=True))


def _task(dcfg: Any) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from lrsweep.report import format_summary
    from lrsweep.sweep import run_sweep

    preset = HydraConfig.get().runtime.choices.get(EXPERIMENT_GROUP)
    command = _RUN["command"]
    try:
        cfg = to_config(dcfg)
        if command == "plan":
            _plan(cfg, log_run=True)
            return None
        if command == "launch":
            _launch(cfg)
            return None
        result = run_sweep(cfg, preset=preset, preset_text=_preset_text(preset), command=_command_line())
    except LrsweepError as exc:
        if _debug():
            raise
        _die(exc.line(), exc.exit_code)
    except KeyboardInterrupt as exc:
        what, code = (
            ("terminated (SIGTERM)", EXIT_TERMINATED)
            if isinstance(exc, Terminated)
            else ("interrupted", EXIT_INTERRUPTED)
        )
        _die(f"{what}; run the same command again to resume where it stopped", code)
    print(format_summary(result))
    return result.best_value


def _command_line() -> str:
    """This job's command, credentials masked: ``lrsweep`` and its overrides (in a multirun, this job's own)."""
    import shlex

    from hydra.core.hydra_config import HydraConfig

    from lrsweep.redact import redact_text

    words = [shlex.quote(redact_text(o)) for o in HydraConfig.get().overrides.task]
    return " ".join(["lrsweep", *([_RUN["command"]] if _RUN["command"] != "sweep" else []), *words])


def _preset_text(preset: str | None) -> str | None:
    """The preset's file as it is now (credentials masked), or None."""
    from lrsweep.redact import redact_yaml

    path = Path.cwd() / EXPERIMENTS_DIR / f"{preset}.yaml"
    if not preset or not path.is_file():
        return None
    return redact_yaml(path.read_text(encoding="utf-8"))


def _hydra_line(exc: BaseException) -> str:
    """One line out of Hydra's and OmegaConf's multi-line messages."""
    text = str(exc)
    line = _experiment_line(text) or _composition_line(text)
    if line:
        return line
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


# commands that only read MLflow (and the data): argparse, not Hydra; each module's main(argv) -> exit status
READING_COMMANDS = {"compare": "lrsweep.compare", "reproduce": "lrsweep.reproduce", "export": "lrsweep.export.bundle"}


def _reading_command(name: str, argv: list[str]) -> int:
    import importlib

    try:
        return int(importlib.import_module(READING_COMMANDS[name]).main(argv) or 0)
    except LrsweepError as exc:
        if _debug():
            raise
        _die(exc.line(), exc.exit_code)
    except KeyboardInterrupt:
        _die("interrupted", EXIT_INTERRUPTED)
    return 0


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a tool killed by a closed pipe ends with


def main() -> None:
    """Console entry point ``lrsweep``: a reader that stops early (``lrsweep --help | head``) ends it quietly;
    SIGTERM stops a sweep as Ctrl-C does (exit status 143)."""
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        _main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the same error again when it flushes stdout at exit: send the rest nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    finally:
        signal.signal(signal.SIGTERM, previous)  # (main called in a process that goes on: the tests)


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def _main() -> None:
    if sys.argv[1:2] and sys.argv[1] in READING_COMMANDS:  # before Hydra, which never sees their arguments
        code = _reading_command(sys.argv[1], sys.argv[2:])
        if code:
            sys.exit(code)
        return
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    # Hydra's own report of a composition error is several lines; let it raise so we print one.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(_help(Path.cwd()), end="")
        return
    logging.captureWarnings(True)
    _RUN.update(command="sweep", dry_run=False, plans=[])  # this call's, not an earlier main()'s in this process
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        _RUN["command"] = sys.argv.pop(1)
    if "--dry-run" in sys.argv:
        if _RUN["command"] != "launch":
            _die("--dry-run belongs to `lrsweep launch`; a sweep or a plan sends nothing anyway")
        sys.argv.remove("--dry-run")
        _RUN["dry_run"] = True
    try:
        register_configs()
    except LrsweepError as exc:
        if _debug():
            raise
        _die(exc.line(), exc.exit_code)
    app = hydra.main(config_path="conf", config_name="config", version_base="1.3")(_task)
    # A multirun's folder (Hydra writes the composed config there, credentials and all) is temporary.
    scratch = None
    if "LRSWEEP_HYDRA_DIR" not in os.environ and any(a in ("-m", "--multirun") for a in sys.argv[1:]):
        scratch = tempfile.mkdtemp(prefix="lrsweep-multirun-")
        os.environ["LRSWEEP_HYDRA_DIR"] = scratch
    try:
        app()
        if len(_RUN["plans"]) > 1:  # a multirun of plans: the choice, side by side
            from lrsweep.planning.plan import plan_table

            print(plan_table(_RUN["plans"]))
    except (HydraException, OmegaConfBaseException) as exc:
        if _debug():
            raise
        _die(_hydra_line(exc))
    except LrsweepError as exc:
        if _debug():
            raise
        _die(exc.line(), exc.exit_code)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

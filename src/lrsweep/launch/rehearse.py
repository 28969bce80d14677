"""The rehearsal (``cluster=standalone``): what a launch sends to EMR, run against a Spark standalone cluster.

It stages the same three objects under ``cluster.s3_uri`` (an S3-compatible endpoint will do), then does on this
machine what EMR does on the primary node:

1. a fresh virtual environment (``python -m venv``) under ``launch.rehearsal_dir``;
2. ``install.sh`` downloaded from S3 and run with that environment's interpreter: it downloads the wheel from
   S3 and pip-installs it with its extras, the bootstrap action's very arguments;
3. the step's very command, ``PYTHON -m lrsweep.launch.step s3://.../config.yaml``, run with that interpreter
   in the working directory: the config read back from S3, the sweep run on ``cluster.master``.

Dependencies are not downloaded again (pyspark alone is ~500 MB): the environment sees this interpreter's
installed packages through a ``.pth`` line naming a folder of links to them, which leaves out lrsweep itself
(its files, metadata and editable-install hooks), so pip finds every dependency satisfied while lrsweep comes
from the wheel alone. The step's environment drops PYTHONPATH and PYSPARK_PYTHON, so neither the driver nor
Spark's Python workers (which run the step's interpreter, as on EMR's nodes) can pick up another lrsweep.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrsweep.errors import LrsweepError
from lrsweep.launch import Launched
from lrsweep.launch.aws import check_bucket, client, s3_get, scrub
from lrsweep.launch.staging import INSTALL_NAME, Staging, install_args, split_s3_uri, step_args

if TYPE_CHECKING:
    from lrsweep.config import Config
    from lrsweep.launch.launcher import Printer
    from lrsweep.launch.package import Package

__all__ = ["rehearse", "fresh_venv", "step_environment"]

DEPS_DIR = "deps"  # links to this interpreter's installed packages, lrsweep left out
VENV_DIR = "venv"
# what must not be linked: lrsweep (its package, metadata, editable-install hooks) and every .pth file (an
# editable install's .pth would put a source checkout on the path)
_LEFT_OUT = ("lrsweep", "__editable__", "_lrsweep")
# variables that would let the step import something other than the fresh environment's lrsweep
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")


def rehearse(cfg: Config, package: Package, staging: Staging, *, dry_run: bool, out: Printer) -> Launched:
    from lrsweep.launch.launcher import built, describe_launch, upload, watch_line

    workdir = (Path(cfg.launch.rehearsal_dir) / staging.id).absolute()
    python = workdir / VENV_DIR / "bin" / "python"
    script = workdir / INSTALL_NAME
    install = ["bash", str(script), *install_args(staging, str(python), cfg.launch.extras)]
    step = step_args(str(python), staging.uris["config"])
    describe_launch(package, staging, out, dry_run)
    if dry_run:
        out(f"dry run: would create a fresh virtual environment in {workdir / VENV_DIR}, then run")
        out(f"  {' '.join(install)}")
        out(f"  {' '.join(step)}")
        return _launched(staging, out, workdir, [install, step], dry_run=True)

    s3 = client("s3")
    check_bucket(s3, split_s3_uri(staging.prefix)[0])
    wheel, package, staging = built(cfg, package, staging)
    install[2:] = install_args(staging, str(python), cfg.launch.extras)
    step = step_args(str(python), staging.uris["config"])
    upload(s3, staging, wheel, out)
    fresh_venv(workdir)
    script.write_bytes(s3_get(s3, staging.uris["bootstrap"]))
    out(f"rehearsal: a fresh virtual environment in {workdir / VENV_DIR}")
    env = step_environment(workdir / VENV_DIR)
    _run(install, env, workdir / "install.log", out, "install")
    out(f"rehearsal: the step on {cfg.cluster.master}: {' '.join(step)}")
    out(watch_line(cfg, str(workdir / "step.log")))
    _run(step, env, workdir / "step.log", out, "step")
    return _launched(staging, out, workdir, [install, step], dry_run=False)


def _launched(staging: Staging, out: Printer, workdir: Path, commands: list[list[str]], dry_run: bool) -> Launched:
    return Launched(
        request={}, cluster_id=None, step_id=None, staged=dict(staging.uris), lines=out.lines, launch_id=staging.id,
        workdir=str(workdir), dry_run=dry_run, commands=commands,
    )  # fmt: skip


def _linked_sites() -> list[Path]:
    """This interpreter's site-packages folders (a virtual environment's own, else the system's)."""
    paths = sysconfig.get_paths()
    seen: list[Path] = []
    for key in ("purelib", "platlib"):
        p = Path(paths[key])
        if p.is_dir() and p not in seen:
            seen.append(p)
    return seen


def fresh_venv(workdir: Path) -> Path:
    """An empty virtual environment in ``workdir/venv`` that sees this interpreter's packages but lrsweep."""
    if workdir.exists():
        shutil.rmtree(workdir)
    deps = workdir / DEPS_DIR
    deps.mkdir(parents=True)
    for site in _linked_sites():
        for entry in sorted(site.iterdir()):
            name = entry.name
            if name.startswith(_LEFT_OUT) or name.endswith((".pth", ".egg-link")) or (deps / name).exists():
                continue
            (deps / name).symlink_to(entry)
    # no pip of its own (ensurepip costs ~10 s): `python -m pip` finds the linked one, which installs into the
    # environment it runs in
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(workdir / VENV_DIR)
    purelib = _venv_purelib(workdir / VENV_DIR)
    (purelib / "_lrsweep_rehearsal_deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    return workdir / VENV_DIR


def _venv_purelib(env: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    path = env / "lib" / version / "site-packages"
    if not path.is_dir():
        raise LrsweepError(f"the fresh virtual environment {env} has no {path.name} folder", "remove it and retry")
    return path


def step_environment(env: Path) -> dict[str, str]:
    """The install's and the step's environment: this one, with the fresh environment first on PATH."""
    out = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    out["VIRTUAL_ENV"] = str(env)
    out["PATH"] = f"{env / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    out["PYTHONNOUSERSITE"] = "1"
    return out


def _run(cmd: list[str], env: dict[str, str], log: Path, out: Printer, what: str) -> None:
    """Run ``cmd`` in the working directory, its output printed line by line and kept in ``log``."""
    last: list[str] = []
    with open(log, "w", encoding="utf-8") as fh:
        proc: subprocess.Popen[Any] = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
        )
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = scrub(raw.rstrip("\n"))
                fh.write(f"{line}\n")
                if line.strip():
                    out(f"  {what} | {line}")
                    last.append(line.strip())
                    del last[:-50]
            code = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
    if code != 0:
        errors = [line for line in last if line.startswith("lrsweep: error:")]
        reason = (errors or last or ["no output"])[-1].removeprefix("lrsweep: error:").strip()
        raise LrsweepError(f"the rehearsal's {what} failed (exit status {code}): {reason[:300]}", f"see {log}")

"""The wheel a launch sends: built from the source checkout lrsweep runs from, or the one ``launch.wheel`` names.

A cluster installs lrsweep from this one file (the bootstrap action on every EMR node, the rehearsal into a fresh
virtual environment), so the file must hold everything a sweep reads from the package: the modules, the shipped
config groups (``conf/**.yaml``) and the bundled dataset. Every wheel is checked for them before it is sent.

Building costs seconds (pip sets up an isolated build environment), so a built wheel is cached under
``$XDG_CACHE_HOME/lrsweep/wheels`` (default ``~/.cache``), keyed by a digest of the files the build reads. The
build runs on a copy of those files, so the checkout gets no ``build/`` or ``*.egg-info`` folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lrsweep.datasets.cache import machine_cache_dir
from lrsweep.errors import LrsweepError

__all__ = [
    "Package",
    "find_package",
    "project_root",
    "source_files",
    "check_wheel",
    "source_digest",
    "REQUIRED_MEMBERS",
]

# what a wheel must hold for a launched sweep to run: the step's entry point, the root config and the bundled data
REQUIRED_MEMBERS = ("lrsweep/launch/step.py", "lrsweep/conf/config.yaml", "lrsweep/datasets/telco_churn.csv.gz")
# files next to pyproject.toml that a setuptools build may read (the readme is the package's description)
_BUILD_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", "README.md", "README.rst", "LICENSE")
_SKIPPED_PARTS = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")


@dataclass(frozen=True)
class Package:
    """What a launch sends: the wheel's file name, a digest naming its content, and where it comes from.

    ``built`` is None until :meth:`wheel` is called for a source checkout (a dry run never builds).
    """

    name: str  # lrsweep-VERSION-py3-none-any.whl
    digest: str  # sha256 of the source files (a checkout) or of the wheel file (launch.wheel)
    root: Path | None  # the checkout, or None for a given wheel
    given: Path | None  # launch.wheel

    @property
    def origin(self) -> str:
        return f"from {self.root}" if self.root is not None else f"launch.wheel={self.given}"

    def wheel(self) -> Path:
        """The wheel file: the given one, or the checkout's (from the cache, else built and checked now)."""
        if self.given is not None:
            return self.given
        assert self.root is not None
        return _cached_build(self.root, self.digest, self.name)


def find_package(wheel: str | None) -> Package:
    """The package to send (cheap: nothing is built here)."""
    if wheel:
        return _given(Path(wheel).expanduser())
    root = project_root()
    if root is None:
        import lrsweep

        raise LrsweepError(
            f"lrsweep runs from an installed package ({Path(lrsweep.__file__).parent}), not a source checkout, "
            "so there is no wheel to build",
            "give launch.wheel=PATH to a built lrsweep wheel (pip wheel --no-deps -w dist CHECKOUT)",
        )
    return Package(name=_expected_name(root), digest=source_digest(root), root=root, given=None)


def project_root() -> Path | None:
    """The checkout holding lrsweep: the folder above the package with a pyproject.toml naming project lrsweep."""
    import lrsweep

    here = Path(lrsweep.__file__).resolve().parent
    for folder in here.parents:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                name = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name")
            except (OSError, tomllib.TOMLDecodeError):
                return None
            return folder if name == "lrsweep" else None
    return None


def source_files(root: Path) -> list[Path]:
    """The files a build of ``root`` reads, relative to it, in a stable order: the build files and src/."""
    files = [Path(name) for name in _BUILD_FILES if (root / name).is_file()]
    src = root / "src"
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not _skipped(rel):
            files.append(rel)
    return files


def check_wheel(path: Path, root: Path | None = None) -> None:
    """Refuse a wheel without what a launched sweep reads: :data:`REQUIRED_MEMBERS`, and (built from ``root``)
    every config YAML and bundled dataset of the checkout."""
    try:
        with zipfile.ZipFile(path) as z:
            members = set(z.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise LrsweepError(f"{path} is not a readable wheel ({exc})", "give a wheel built by pip wheel") from None
    expected = set(REQUIRED_MEMBERS)
    if root is not None:
        package = root / "src" / "lrsweep"
        data = [*package.glob("conf/**/*.yaml"), *package.glob("datasets/*.gz")]
        expected |= {p.relative_to(root / "src").as_posix() for p in data}
    missing = sorted(expected - members)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise LrsweepError(
            f"the wheel {path.name} lacks {missing[0]}{more}, which a launched sweep reads",
            "include conf/**/*.yaml and datasets/* in [tool.setuptools.package-data], or give a complete launch.wheel",
        )


# ---------------------------------------------------------------------------------------------------------------


def _skipped(rel: Path) -> bool:
    return any(part in _SKIPPED_PARTS or part.endswith(".egg-info") for part in rel.parts) or rel.suffix == ".pyc"


def _given(path: Path) -> Package:
    if not path.is_file():
        raise LrsweepError(
            f"launch.wheel={path} does not exist", "build one with `pip wheel --no-deps -w dist .` in the checkout"
        )
    if not (path.name.startswith("lrsweep-") and path.name.endswith(".whl")):
        raise LrsweepError(f"launch.wheel={path} is not an lrsweep wheel", "give lrsweep-VERSION-py3-none-any.whl")
    check_wheel(path)
    return Package(name=path.name, digest=_file_digest(path), root=None, given=path.resolve())


def _expected_name(root: Path) -> str:
    """The wheel's file name, as pip names a pure-Python wheel of the version in pyproject.toml."""
    try:
        version = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        import lrsweep

        version = lrsweep.__version__
    return f"lrsweep-{version}-py3-none-any.whl"


def source_digest(root: Path) -> str:
    """A digest of the names and contents of :func:`source_files`: the wheel cache's key."""
    h = hashlib.sha256()
    for rel in source_files(root):
        h.update(rel.as_posix().encode() + b"\0")
        h.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _cached_build(root: Path, digest: str, name: str) -> Path:
    folder = machine_cache_dir("wheels") / digest[:24]
    cached = folder / name
    if cached.is_file():
        return cached
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lrsweep-wheel-", dir=folder.parent) as tmp:
        built = _build(root, Path(tmp))
        check_wheel(built, root)
        if built.name != name:  # a build backend naming it otherwise: keep its name, and the cache finds it by it
            name = built.name
        staged = Path(tmp) / "out" / "staged"
        staged.mkdir()
        shutil.move(built, staged / name)
        # atomic: a concurrent launch sees no half-written wheel; OSError: another launch cached it first
        with contextlib.suppress(OSError):
            os.replace(staged, folder)
    found = sorted(folder.glob("lrsweep-*.whl"))
    if not found:
        raise LrsweepError(f"the wheel cache {folder} holds no wheel", f"remove {folder} and launch again")
    return found[0]


def _build(root: Path, tmp: Path) -> Path:
    """``pip wheel --no-deps`` of a copy of the files a build reads; the wheel's path."""
    copy = tmp / "source"
    for rel in source_files(root):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, copy / rel)
    out = tmp / "out"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(out)]
    proc = subprocess.run([*cmd, str(copy)], capture_output=True, text=True, check=False)
    wheels = sorted(out.glob("lrsweep-*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        error = [line for line in lines if "error" in line.lower()] or lines or ["no wheel was written"]
        raise LrsweepError(
            f"building the wheel of {root} failed: {error[-1][:300]}",
            f"run `{sys.executable} -m pip wheel --no-deps {root}` to see why, or give launch.wheel=PATH",
        )
    return wheels[0]

"""The wheel a launch sends: built from this checkout, complete, cached per source state; a given one checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lrsweep.errors import LrsweepError
from lrsweep.launch.package import check_wheel, find_package, project_root, source_digest, source_files


def test_the_built_wheel_holds_every_config_yaml_and_the_bundled_data(built_wheel: Path):
    root = project_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    package = root / "src" / "lrsweep"
    shipped = {p.relative_to(root / "src").as_posix() for p in package.rglob("*") if p.suffix in (".yaml", ".gz")}
    assert "lrsweep/conf/config.yaml" in shipped and "lrsweep/datasets/telco_churn.csv.gz" in shipped
    with zipfile.ZipFile(built_wheel) as z:
        members = set(z.namelist())
        assert shipped <= members
        assert (
            z.read("lrsweep/datasets/telco_churn.csv.gz") == (package / "datasets" / "telco_churn.csv.gz").read_bytes()
        )
    assert built_wheel.name == find_package(None).name == "lrsweep-0.1.0-py3-none-any.whl"


def test_a_second_launch_of_the_same_source_reuses_the_cached_wheel(built_wheel: Path):
    stamp = built_wheel.stat().st_mtime_ns
    again = find_package(None).wheel()
    assert again == built_wheel and again.stat().st_mtime_ns == stamp


def test_the_cache_key_follows_the_source_files(tmp_path: Path):
    root = project_root()
    assert root is not None
    copy = tmp_path / "checkout"
    for rel in source_files(root):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, copy / rel)
    assert source_digest(copy) == source_digest(root)
    (copy / "src" / "lrsweep" / "__pycache__").mkdir(exist_ok=True)
    (copy / "src" / "lrsweep" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")  # not read by a build
    assert source_digest(copy) == source_digest(root)
    search = copy / "src" / "lrsweep" / "conf" / "search" / "l2.yaml"
    search.write_text(search.read_text() + "\n# changed\n")
    assert source_digest(copy) != source_digest(root)


def test_a_wheel_without_the_bundled_data_is_refused(tmp_path: Path, built_wheel: Path):
    broken = tmp_path / "lrsweep-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(built_wheel) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            if not item.filename.startswith("lrsweep/datasets/"):
                dst.writestr(item, src.read(item))
    with pytest.raises(LrsweepError, match=r"lacks lrsweep/datasets/telco_churn.csv.gz.*package-data"):
        find_package(str(broken))
    check_wheel(built_wheel, project_root())  # the complete one passes


def test_a_missing_or_foreign_launch_wheel_is_one_line(tmp_path: Path):
    with pytest.raises(LrsweepError, match=r"launch.wheel=.*nope.whl does not exist; build one with"):
        find_package(str(tmp_path / "nope.whl"))
    other = tmp_path / "other-1.0-py3-none-any.whl"
    other.write_bytes(b"PK")
    with pytest.raises(LrsweepError, match=r"is not an lrsweep wheel"):
        find_package(str(other))


def test_lrsweep_installed_from_a_wheel_has_no_source_to_build(tmp_path: Path, built_wheel: Path):
    installed = tmp_path / "site"
    with zipfile.ZipFile(built_wheel) as z:
        z.extractall(installed)
    code = (
        "import lrsweep, sys\n"
        "from lrsweep.errors import LrsweepError\n"
        "from lrsweep.launch.package import find_package\n"
        "assert lrsweep.__file__.startswith(sys.argv[1]), lrsweep.__file__\n"
        "try:\n    find_package(None)\nexcept LrsweepError as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run([sys.executable, "-c", code, str(installed)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert "runs from an installed package" in line and "give launch.wheel=PATH" in line and "\n" not in line

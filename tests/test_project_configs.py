"""A project's own conf/ and experiments/ (read from the working directory), and the repository's own."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import lrsweep
from lrsweep.cli import register_configs, to_config
from lrsweep.clusters import StandaloneCluster
from lrsweep.config import Config, validate
from lrsweep.errors import LrsweepError
from lrsweep.thresholds import RecallAtThreshold
from tests.e2e_helpers import mlflow_runs, run_cli

CONF = (Path(lrsweep.__file__).parent / "conf").resolve()
REPO = Path(__file__).resolve().parents[1]


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def composed(cwd: Path, *overrides: str) -> Config:
    """The typed config of ``lrsweep OVERRIDES`` run in ``cwd``."""
    register_configs(cwd)
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return to_config(compose("config", overrides=list(overrides)))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "conf/dataset/hospital.yaml", """
        name: hospital
        source: file
        path: data/hospital.csv
        target: readmitted
        positive: "1"
        drop: [patient_id]
    """)  # fmt: skip
    write(tmp_path, "conf/cluster/mycluster.yaml", """
        defaults:
          - standalone
          - _self_
        master: spark://head:7077
    """)  # fmt: skip
    write(tmp_path, "conf/threshold/screening.yaml", """
        defaults:
          - recall_at
          - _self_
        min_recall: 0.95
    """)  # fmt: skip
    write(tmp_path, "experiments/readmission.yaml", """
        # @package _global_
        defaults:
          - override /dataset: hospital
          - override /threshold: screening
          - override /search: l2
        seed: 7
        search:
          n_trials: 30
        study:
          name: readmission
        tracking:
          experiment: readmission
    """)  # fmt: skip
    return tmp_path


@pytest.fixture(autouse=True)
def _registered_from_the_repository():
    yield
    register_configs(REPO)  # leave the process-wide ConfigStore as the other tests expect it


def test_a_projects_own_options_are_selectable_by_name(project: Path) -> None:
    cfg = composed(project, "dataset=hospital")
    assert (cfg.dataset.name, cfg.dataset.path, cfg.dataset.target, cfg.dataset.drop) == (
        "hospital", "data/hospital.csv", "readmitted", ["patient_id"],
    )  # fmt: skip
    assert cfg.experiment_name == "lrsweep-hospital"


def test_a_projects_option_extends_a_shipped_one_with_its_schema(project: Path) -> None:
    cluster = composed(project, "backend=spark", "cluster=mycluster").cluster
    assert isinstance(cluster, StandaloneCluster) and cluster.master == "spark://head:7077"
    threshold = composed(project, "threshold=screening").threshold
    assert isinstance(threshold, RecallAtThreshold) and threshold.min_recall == 0.95


def test_a_file_with_a_shipped_options_name_is_refused(project: Path) -> None:
    write(project, "conf/dataset/telco_churn.yaml", "name: mine\n")
    with pytest.raises(LrsweepError, match=r"conf/dataset/telco_churn.yaml has the name of a shipped config"):
        register_configs(project)


def test_a_directory_without_conf_or_experiments_composes_the_shipped_defaults(tmp_path: Path) -> None:
    cfg = composed(tmp_path)
    assert cfg.dataset.name == "telco_churn" and cfg.threshold.strategy == "f1"


def test_an_experiment_pins_its_question_and_later_overrides_win(project: Path) -> None:
    cfg = composed(project, "experiment=readmission")
    assert (cfg.dataset.name, cfg.search.name, cfg.seed, cfg.search.n_trials) == ("hospital", "l2", 7, 30)
    assert isinstance(cfg.threshold, RecallAtThreshold) and cfg.threshold.min_recall == 0.95
    assert (cfg.study.name, cfg.tracking.experiment) == ("readmission", "readmission")
    assert composed(project, "experiment=readmission", "search.n_trials=5").search.n_trials == 5


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "experiments").glob("*.yaml")))
def test_every_preset_of_the_repository_composes_validates_and_names_itself(name: str) -> None:
    cfg = composed(REPO, f"experiment={name}")
    validate(cfg)
    # one name ties a preset together: its file, its study and its MLflow experiment
    assert cfg.study.name == name and cfg.tracking.experiment == name


def test_the_repository_ships_a_preset_per_threshold_strategy_and_the_asked_cases() -> None:
    from lrsweep.thresholds import STRATEGIES

    presets = {p.stem: composed(REPO, f"experiment={p.stem}") for p in (REPO / "experiments").glob("*.yaml")}
    assert {c.threshold.strategy for c in presets.values()} == set(STRATEGIES)
    assert presets["churn_course"].backend.name == "sklearn" and presets["churn_course"].dataset.name == "telco_churn"
    assert presets["churn_recall_floor"].threshold.strategy == "recall_at"
    assert (presets["ctr_spark"].backend.name, presets["ctr_spark"].dataset.kind) == ("spark", "generated")


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "conf").rglob("*.yaml")))
def test_every_worked_example_in_the_repositorys_conf_composes_and_validates(name: str) -> None:
    (path,) = [p for p in (REPO / "conf").rglob(f"{name}.yaml")]
    group = path.parent.name
    extra = ["backend=spark"] if group == "cluster" else []
    validate(composed(REPO, f"{group}={name}", *extra))


# -- the command line ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_an_experiment_runs_by_the_documented_command_into_the_experiment_it_names(tmp_path: Path) -> None:
    write(tmp_path, "experiments/quick_churn.yaml", """
        # @package _global_
        defaults:
          - override /search: l2
        search:
          n_trials: 2
          solvers: [lbfgs]
        study:
          name: quick_churn
        tracking:
          experiment: quick_churn
    """)  # fmt: skip
    proc = run_cli(["experiment=quick_churn"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parents, children = mlflow_runs(tmp_path, experiment="quick_churn")
    assert len(parents) == 1 and len(children) == 2
    assert parents[0].data.tags["lrsweep.preset"] == "quick_churn"
    assert parents[0].data.params["study.name"] == "quick_churn"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setup", "args", "needle"),
    [
        (None, ["experiment=nope"], "unknown experiment 'nope'"),
        ("conf/dataset/csv.yaml", [], "conf/dataset/csv.yaml has the name of a shipped config (dataset=csv)"),
        ("experiments/broken.yaml", ["experiment=broken"], "experiments/broken.yaml"),
    ],
)
def test_mistakes_in_a_project_are_one_line(tmp_path: Path, setup: str | None, args: list[str], needle: str) -> None:
    write(tmp_path, "experiments/fine.yaml", "# @package _global_\nseed: 1\n")
    if setup == "experiments/broken.yaml":
        write(tmp_path, setup, "# @package _global_\nserch:\n  n_trials: 3\n")  # a misspelt key
    elif setup:
        write(tmp_path, setup, "name: mine\n")
    proc = run_cli([*args, "search.n_trials=1", "tracking=off"], tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("lrsweep: error: ") and needle in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_an_explicit_study_name_refuses_a_changed_search(tmp_path: Path) -> None:
    base = ["study.name=fixed", "search=l2", "search.solvers=[lbfgs]", "tracking=off", "search.n_trials=1"]
    assert run_cli(base, tmp_path).returncode == 0
    proc = run_cli([*base, "search.C.low=0.01"], tmp_path)
    assert proc.returncode == 2 and "study 'fixed' holds trials of another search" in proc.stderr
    assert "search.C.low" in proc.stderr
    assert os.path.exists(tmp_path / "lrsweep_studies" / "fixed.journal")

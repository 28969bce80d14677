"""``lrsweep reproduce``: the pure parts (metric comparison, data changes, the config rebuilt from its record)
fast; then real sweeps of a copy of the telco data, reproduced, with the data changed under them."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lrsweep.config import Config
from lrsweep.errors import LrsweepError, NotReproduced
from lrsweep.recorded import config_of, data_changes, model_params_of
from lrsweep.redact import REDACTED, redact_mapping
from lrsweep.reproduce import Row, compare_metrics, format_report, version_changes
from tests.e2e_helpers import cli_in_process, mlflow_runs, run_cli, study_trials

ROOT = Path(__file__).resolve().parents[1]
TELCO = ROOT / "src" / "lrsweep" / "datasets" / "telco_churn.csv.gz"
FAST = ["search.solvers=[lbfgs,liblinear]", "search.penalties=[l2,l1]", "tracking.artifacts=false"]


# -- pure functions -----------------------------------------------------------------------------------------
def test_metrics_compare_validation_then_threshold_then_test_and_nan_agrees_with_nan():
    rows = compare_metrics(
        {"test_f1": 0.5, "val_f1": 0.6, "threshold": 0.4, "val_pr_auc": math.nan, "fit_seconds": 1.0, "only": 1},
        {"test_f1": 0.5, "val_f1": 0.6 + 1e-12, "threshold": 0.41, "val_pr_auc": math.nan, "fit_seconds": 2.0},
    )
    assert [r.metric for r in rows] == ["val_f1", "val_pr_auc", "threshold", "test_f1"]  # fit time never compared
    assert [r.agrees(1e-9) for r in rows] == [True, True, False, True]
    assert not Row("val_f1", 0.5, math.nan).agrees(1.0)  # a metric that became undefined differs


def test_the_report_marks_what_differs_and_lists_changed_versions():
    rows = [Row("val_f1", 0.6, 0.6), Row("test_f1", 0.5, 0.52)]
    text, bad = format_report(rows, 1e-9, [("scikit-learn", "1.7.2", "1.8.0")], ["head"])
    assert [r.metric for r in bad] == ["test_f1"]
    assert "test_f1" in text and "<- differs" in text.splitlines()[3] and "agree" not in text
    assert "scikit-learn   1.7.2 -> 1.8.0" in text
    text, bad = format_report(rows[:1], 1e-9, [], ["head"])
    assert not bad and text.endswith("reproduced: 1 metrics agree within 1e-09")


def test_version_changes_name_each_package_that_differs():
    recorded = {"scikit-learn.version": "1.7.2", "numpy.version": "2.3.0", "platform": "Linux-a"}
    assert version_changes(recorded, {"scikit-learn.version": "1.7.2", "numpy.version": "2.3.1"}) == [
        ("numpy", "2.3.0", "2.3.1")
    ]
    assert version_changes({"pyspark.version": "4.0.1"}, {}) == [("pyspark", "4.0.1", "not installed")]


FP = {
    "sha256": "a" * 64, "rows": 3, "columns": 2, "schema_sha256": "s1", "schema": ["x:int64", "y:object"],
    "column_sha256": {"x": "1", "y": "2"},
}  # fmt: skip


@pytest.mark.parametrize(
    ("now", "said"),
    [
        ({"rows": 2}, "rows: 3 recorded, 2 now"),
        ({"schema": ["x2:int64", "y:object"], "schema_sha256": "s2"}, "columns: 'x' recorded, now gone; 'x2' new"),
        ({"schema": ["x:float64", "y:object"], "schema_sha256": "s2"}, "column types: x:int64 -> float64"),
        ({"column_sha256": {"x": "1", "y": "3"}}, "values changed in column 'y'"),
        ({"column_sha256": {}}, "values changed (same rows and columns)"),
    ],
)
def test_data_changes_say_what_changed(now, said):
    assert said in "; ".join(data_changes(FP, FP | {"sha256": "b" * 64} | now))


def test_same_data_has_no_changes_and_an_old_record_without_schema_still_compares():
    assert data_changes(FP, dict(FP)) == []
    old = {k: FP[k] for k in ("sha256", "rows", "columns", "schema_sha256")}
    assert data_changes(old, FP | {"sha256": "b" * 64, "schema_sha256": "s2", "columns": 3}) == [
        "columns: 2 recorded, 3 now (names or types differ)"
    ]


def _recorded(cfg: Config) -> dict:
    """config.yaml as a sweep logs it: asdict, redacted, through YAML."""
    return yaml.safe_load(yaml.safe_dump(redact_mapping(dataclasses.asdict(cfg)), sort_keys=False))


def test_the_recorded_config_comes_back_typed_with_overrides_on_top():
    from lrsweep.clusters import StandaloneCluster
    from lrsweep.thresholds import RecallAtThreshold

    cfg = Config(threshold=RecallAtThreshold(min_recall=0.85), cluster=StandaloneCluster(master="spark://h:7077"))
    cfg.seed, cfg.search.n_trials, cfg.tracking.uri = 7, 11, "postgresql://u:pw@db/x"
    back = config_of(_recorded(cfg), ["seed=8", "dataset.path=elsewhere.csv"])
    assert isinstance(back.threshold, RecallAtThreshold) and back.threshold.min_recall == 0.85
    assert isinstance(back.cluster, StandaloneCluster) and back.cluster.master == "spark://h:7077"
    assert (back.seed, back.dataset.path, back.search.n_trials) == (8, "elsewhere.csv", 11)
    assert back.tracking.uri is None  # where it logged is not reproduced (and it held a masked password)


def test_a_redacted_value_must_be_given_again_and_a_masked_spark_setting_is_left_to_the_environment():
    cfg = Config()
    cfg.dataset.path = "https://u:hunter2@example.com/churn.csv"
    cfg.cluster.spark_conf = {"spark.hadoop.fs.s3a.secret.key": "AKIA-FAKE", "spark.sql.shuffle.partitions": "4"}
    recorded = _recorded(cfg)
    assert REDACTED in recorded["dataset"]["path"]
    with pytest.raises(LrsweepError, match=r"dataset.path was redacted .* add dataset.path=VALUE"):
        config_of(recorded)
    back = config_of(recorded, ["dataset.path=https://u:hunter2@example.com/churn.csv"])
    assert back.cluster.spark_conf == {"spark.sql.shuffle.partitions": "4"}


def test_an_unknown_recorded_key_or_override_is_one_clear_error():
    recorded = _recorded(Config())
    with pytest.raises(LrsweepError, match="cannot rebuild the recorded config at 'search.no_such'"):
        config_of(recorded | {"search": recorded["search"] | {"no_such": 1}})
    with pytest.raises(LrsweepError, match="KEY=VALUE"):
        config_of(recorded, ["seed"])
    with pytest.raises(LrsweepError, match="does not know"):
        config_of(recorded | {"backend": {"name": "vowpal"}})


def test_model_params_come_back_from_a_trials_logged_strings():
    params = {"penalty": "none", "l1_ratio": "0.0", "class_weight": "balanced", "max_iter": "200", "tol": "0.0001"}
    back = model_params_of(params | {"solver": "sag"})
    assert back == {
        "C": math.inf, "l1_ratio": 0.0, "penalty": "none", "solver": "sag", "class_weight": "balanced",
        "max_iter": 200, "tol": 1e-4, "threshold": None, "multiclass": None,
    }  # fmt: skip
    assert model_params_of(params | {"C": repr(0.1234567890123), "threshold": "0.42"})["C"] == 0.1234567890123
    assert model_params_of(params | {"multiclass": "ovr"})["multiclass"] == "ovr"  # a multi-class trial's mode
    with pytest.raises(LrsweepError, match="lacks the param 'tol'"):
        model_params_of({k: v for k, v in params.items() if k != "tol"})


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ([], "give one RUN_ID"),
        (["a", "b"], "one RUN_ID, not 2"),
        (["--best"], "--experiment and --best go together"),
        (["abc", "--experiment", "x", "--best"], "instead of a RUN_ID"),
        (["abc", "--tolerance", "-1"], "--tolerance -1.0 must be >= 0"),
        (["abc", "--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_a_wrong_reproduce_command_is_one_error_before_any_store_is_read(argv, said):
    from lrsweep.reproduce import main

    with pytest.raises(LrsweepError, match=re.escape(said)):
        main(argv)


def test_a_missing_local_store_is_named_not_created(tmp_path):
    from lrsweep.export.bundle import main as export
    from lrsweep.reproduce import main

    uri = f"sqlite:///{tmp_path / 'nowhere.db'}"
    with pytest.raises(LrsweepError, match="no MLflow store at .*run `lrsweep reproduce` there"):
        main(["abc", "--tracking-uri", uri])
    with pytest.raises(LrsweepError, match="no MLflow store at .*run `lrsweep export` there"):
        export(["abc", "--out", str(tmp_path / "b"), "--tracking-uri", uri])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- real sweeps, reproduced --------------------------------------------------------------------------------
@dataclasses.dataclass
class Swept:
    cwd: Path
    data: Path  # the sweep's CSV (tests change it and put it back)
    parent: str
    trial: str  # a completed trial that is not the best
    args: list[str]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Swept:
    cwd = tmp_path_factory.mktemp("reproduce")
    data = cwd / "churn.csv"
    pd.read_csv(TELCO).to_csv(data, index=False)
    args = ["dataset=csv", "dataset.path=churn.csv", "dataset.target=churn", "dataset.positive=Yes"]
    args += ["search.n_trials=4", "tracking.log_model=false", *FAST]
    proc = cli_in_process(args, cwd)  # the sweep that is reproduced: the CLI's main() in this process
    assert proc.returncode == 0, proc.stderr[-3000:]
    parents, children = mlflow_runs(cwd, "lrsweep-churn")
    (parent,) = parents
    best = int(parent.data.metrics["best_trial"])
    other = next(c for c in children if int(c.data.tags["lrsweep.trial_number"]) != best)
    return Swept(cwd, data, parent.info.run_id, other.info.run_id, args)


def _reproduce(swept: Swept, *argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    from lrsweep.reproduce import main

    assert main([*argv, "--tracking-uri", f"sqlite:///{swept.cwd / 'mlflow.db'}"]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_a_sweep_and_a_trial_reproduce_exactly(swept, capsys, monkeypatch):
    monkeypatch.chdir(swept.cwd)  # the recorded dataset.path is relative to where the sweep ran
    out = _reproduce(swept, swept.parent, capsys=capsys)
    assert "reproduced: 27 metrics agree within 1e-09" in out  # 13 validation, the threshold, 13 test
    assert "test_roc_auc" in out and "versions differ" not in out
    out = _reproduce(swept, swept.trial, capsys=capsys)
    assert "evaluated on validation again" in out and "test_" not in out
    assert "reproduced: 14 metrics agree within 1e-09" in out


@pytest.mark.slow
def test_the_experiments_best_sweep_is_found_and_reproduced_through_the_cli(swept):
    proc = run_cli(["reproduce", "--experiment", "lrsweep-churn", "--best"], swept.cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"sweep run {swept.parent}" in proc.stdout and "metrics agree" in proc.stdout
    assert proc.stderr == ""  # no library noise (MLflow's download bars)


def _changed(path: Path, change) -> None:
    df = pd.read_csv(path)
    change(df).to_csv(path, index=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda df: df.drop(index=17), "rows: 7043 recorded, 7042 now"),
        (lambda df: df.assign(monthly_charges=df.monthly_charges.where(df.index != 5, 9.5)), "'monthly_charges'"),
        (lambda df: df.rename(columns={"tenure": "tenure_months"}), "'tenure' recorded, now gone; 'tenure_months' new"),
    ],
    ids=["row-removed", "value-changed", "column-renamed"],
)
def test_changed_data_is_refused_naming_the_change_before_anything_is_fitted(swept, change, said, capsys, monkeypatch):
    from lrsweep.reproduce import main

    monkeypatch.chdir(swept.cwd)
    kept = swept.data.read_bytes()
    try:
        _changed(swept.data, change)
        with pytest.raises(LrsweepError) as caught:
            main([swept.parent, "--tracking-uri", f"sqlite:///{swept.cwd / 'mlflow.db'}"])
    finally:
        swept.data.write_bytes(kept)
    assert caught.value.problem.startswith("the data changed since run") and said in caught.value.problem
    assert caught.value.exit_code == 2 and capsys.readouterr().out == ""  # nothing was fitted or compared


@pytest.mark.slow
def test_changed_data_through_the_cli_is_one_line_and_exit_2(swept):
    kept = swept.data.read_bytes()
    try:
        _changed(swept.data, lambda df: df.drop(index=3))
        proc = run_cli(["reproduce", swept.parent], swept.cwd)
    finally:
        swept.data.write_bytes(kept)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("lrsweep: error: the data changed since run") and "rows: 7043 recorded, 7042 now" in line


@pytest.mark.slow
def test_a_recorded_metric_that_does_not_come_back_fails_with_exit_1(swept, capsys, monkeypatch):
    from mlflow import MlflowClient

    from lrsweep.reproduce import main

    monkeypatch.chdir(swept.cwd)
    uri = f"sqlite:///{swept.cwd / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.get_run(swept.trial)
    client.log_text(swept.parent, json.dumps({"scikit-learn.version": "0.0.1"}), "environment.json")
    recorded = run.data.metrics["val_f1"]
    client.log_metric(swept.trial, "val_f1", recorded + 0.01)  # the latest value is what MLflow shows
    try:
        with pytest.raises(NotReproduced, match=r"not reproduced: 1 of 14 metrics differ beyond 1e-09 \(val_f1"):
            main([swept.trial, "--tracking-uri", uri])
        out = capsys.readouterr().out
        assert "<- differs" in out and "scikit-learn   0.0.1 ->" in out
        assert main([swept.trial, "--tracking-uri", uri, "--tolerance", "0.02"]) == 0
    finally:
        client.log_metric(swept.trial, "val_f1", recorded)


@pytest.mark.slow
def test_the_same_command_twice_gives_identical_trials(swept, tmp_path):
    """Determinism (scikit-learn, one worker): a fresh directory, the same command, the same seed."""
    shutil.copy(swept.data, tmp_path / "churn.csv")
    proc = run_cli([*swept.args, "tracking=off"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ((_, first),) = study_trials(swept.cwd).items()
    ((_, second),) = study_trials(tmp_path).items()

    def seen(trials):
        return [(t.params, t.value, t.user_attrs["lrsweep_record"]["metrics"]) for t in trials]

    strip = {"fit_seconds"}  # wall time, the one figure that differs

    def clean(rows):
        return [(p, v, {k: x for k, x in m.items() if k not in strip}) for p, v, m in rows]

    assert clean(seen(first)) == clean(seen(second))
    assert len(first) == 4


PRESETS = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
SKLEARN_PRESETS = [p for p in PRESETS if not p.endswith("_spark")]
# presets of a multi-class target: reproduced with their own small settings (FAST's liblinear-only L1 cannot fit a
# multinomial model, and they record more metrics)
CLASS_PRESETS = {"plan_tiers": ["search.n_trials=2", "dataset.rows=3000", "search.penalties=[l2]"]}


def _project(tmp_path: Path) -> Path:
    """A copy of the repository's experiments/ and conf/: where users run the presets."""
    for folder in ("experiments", "conf"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


@pytest.mark.slow
def test_every_scikit_learn_preset_reproduces_from_its_recorded_run(tmp_path, capsys, monkeypatch):
    """Issue 11, item 4: each experiments/ preset, run (fewer trials; no model or plots logged, which a
    reproduction does not read), then `lrsweep reproduce --experiment <preset> --best`."""
    cwd = _project(tmp_path)
    binary = [p for p in SKLEARN_PRESETS if p not in CLASS_PRESETS]
    small = ["search.n_trials=2", *FAST[:2], "tracking.log_model=false"]
    small += ["tracking.artifacts=false"]
    proc = run_cli(["-m", f"experiment={','.join(binary)}", *small], cwd, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {"LRSWEEP_CACHE": str(tmp_path / "cache")}
    for preset, settings in CLASS_PRESETS.items():
        proc = run_cli([f"experiment={preset}", *settings, *small[2:]], cwd, timeout=1200, env_extra=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    from lrsweep.reproduce import main

    monkeypatch.chdir(cwd)
    monkeypatch.setenv("LRSWEEP_CACHE", env["LRSWEEP_CACHE"])
    for preset in SKLEARN_PRESETS:
        assert main(["--experiment", preset, "--best", "--tracking-uri", f"sqlite:///{cwd / 'mlflow.db'}"]) == 0
        out = capsys.readouterr().out
        # binary: 27 figures; 4 classes: 12 + 5 per class, on validation and test
        agree = 2 * (12 + 5 * 4) if preset in CLASS_PRESETS else 27
        assert f"reproduced: {agree} metrics agree within 1e-09" in out, (preset, out)


@pytest.mark.slow
@pytest.mark.spark
def test_the_spark_preset_reproduces_within_the_stated_tolerance(tmp_path):
    """ctr_spark, small (a cut table, 4,096 buckets, 30 iterations); reproduced in its own process (a Spark
    session of its own, as a user's)."""
    from lrsweep.reproduce import TOLERANCE

    cwd = _project(tmp_path)
    small = ["search.n_trials=1", "dataset.rows=5000", "dataset.hash_features=4096", "search.max_iter=30"]
    small += ["tracking.log_model=false", "tracking.artifacts=false"]
    env = {"SPARK_LOCAL_IP": "127.0.0.1"}
    proc = run_cli(["experiment=ctr_spark", *small], cwd, timeout=1200, env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli(["reproduce", "--experiment", "ctr_spark", "--best"], cwd, timeout=1200, env_extra=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"metrics agree within {TOLERANCE['spark']:g}" in proc.stdout and "test_log_loss" in proc.stdout
    assert "backend spark" in proc.stdout

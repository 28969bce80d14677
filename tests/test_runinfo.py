"""What the MLflow runs table shows of a sweep: names, params, notes, dataset inputs (pure functions)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from lrsweep import runinfo
from lrsweep.config import Config, CVConfig, ObjectiveConfig
from lrsweep.data import DataSummary
from lrsweep.redact import redact_mapping
from lrsweep.thresholds import RecallAtThreshold

STUDY = "lrsweep-telco_churn-sklearn-default-3f9a2c1d"


def test_the_run_name_says_what_tells_sweeps_apart():
    assert runinfo.run_name(Config(), STUDY) == "default f1 seed=42 #3f9a2c1d sklearn telco_churn"
    cfg = Config(cv=CVConfig(folds=5), objective=ObjectiveConfig("pr_auc"), threshold=RecallAtThreshold(min_recall=0.9))
    cfg.seed = 7
    assert runinfo.run_name(cfg, STUDY) == (
        "default recall_at(min_recall=0.9) cv=5 objective=pr_auc seed=7 #3f9a2c1d sklearn telco_churn"
    )
    assert "#my-study " in runinfo.run_name(Config(), "my-study")  # a name the user gave is its own id


def test_the_model_is_named_after_the_study():
    assert runinfo.model_name(STUDY) == STUDY
    assert runinfo.model_name("a b/c") == "a_b_c"


def _params(cfg: Config) -> dict:
    return runinfo.logged_config(
        redact_mapping(dataclasses.asdict(cfg)), backend=cfg.backend.name, cluster=cfg.cluster.name
    )


def test_params_hold_the_backend_s_own_settings_and_no_plumbing():
    params = _params(Config())
    heads = {k.split(".")[0] for k in params}
    assert not heads & {"cluster", "prices", "progress", "debug", "tracking", "launch", "plan", "budget"}
    assert None not in params.values() and "search.n_trials" not in params  # unset values; per-call sizes
    assert params["search.name"] == "default" and params["seed"] == 42 and params["threshold.strategy"] == "f1"


def test_a_spark_sweep_logs_its_cluster_and_an_emr_one_its_price_table_s_date():
    from lrsweep.backends import schemas
    from lrsweep.clusters import EmrCluster

    cfg = Config(backend=schemas()["spark"]())
    assert any(k.startswith("cluster.") for k in _params(cfg)) and not any(
        k.startswith("prices.") for k in _params(cfg)
    )
    cfg.cluster = EmrCluster()
    params = _params(cfg)
    assert params["cluster.name"] == "emr" and "prices.date" in params
    assert not any(k.startswith("prices.regions") for k in params)  # the table itself is in config.yaml


@pytest.mark.parametrize(("C", "log10"), [(0.01, -2.0), (1.0, 0.0), (250.0, math.log10(250.0))])
def test_a_trial_carries_a_chartable_c_and_its_sweep_s_settings(C, log10):
    got = runinfo.trial_params(Config(), {"C": C, "penalty": "l2"})
    assert got["log10_C"] == pytest.approx(log10, abs=1e-6)
    assert {k: got[k] for k in runinfo.SWEEP_PARAMS} == {
        "seed": 42, "search.name": "default", "threshold.strategy": "f1", "cv.folds": 1,
    }  # fmt: skip


def test_no_penalty_logs_no_c():
    got = runinfo.trial_params(Config(), {"C": math.inf, "penalty": "none"})
    assert "C" not in got and "log10_C" not in got and got["penalty"] == "none"


def test_dataset_inputs_name_each_part_with_the_fingerprint_as_digest():
    data = DataSummary(
        fingerprint={"sha256": "ab" * 32, "rows": 100, "positive_rate": 0.25},
        rows={"train": 60, "val": 20, "test": 20},
        features={"numeric": ["age"], "categorical": ["plan"]},
    )
    got = runinfo.dataset_inputs(Config(), data)
    assert [d["name"] for d in got] == ["telco_churn/train", "telco_churn/validation", "telco_churn/test"]
    assert [d["context"] for d in got] == ["train", "validation", "test"]
    assert {d["digest"] for d in got} == {"ab" * 8}
    assert [json.loads(d["profile"])["num_rows"] for d in got] == [60, 20, 20]
    schema = json.loads(got[0]["schema"])["mlflow_colspec"]
    assert schema == [
        {"name": "age", "type": "double"}, {"name": "plan", "type": "string"}, {"name": "churn", "type": "string"},
    ]  # fmt: skip


def test_a_file_s_source_is_shown_without_its_password():
    cfg = Config()
    cfg.dataset.name, cfg.dataset.path = None, "https://reader:hunter2@files.example.com/churn.csv"
    data = DataSummary(fingerprint={"sha256": "0" * 64}, rows={"train": 1}, features={})
    (first, *_) = runinfo.dataset_inputs(cfg, data)
    assert "hunter2" not in json.dumps(first) and first["source_type"] == "https" and first["name"] == "churn/train"


def test_the_parent_note_says_the_result_and_leaves_the_link_to_the_tracker():
    note = runinfo.parent_note(
        study=STUDY, n_finished=50, objective="roc_auc", best_value=0.8412, best_label="C=0.5 l2 lbfgs",
        threshold=0.31, strategy="f1", test={"roc_auc": 0.84, "f1": 0.61},
    )  # fmt: skip
    assert "{best_run}" in note and "{calls}" in note
    assert "50 finished trials" in note and "roc_auc 0.8412" in note and "threshold 0.3100" in note
    assert "roc_auc 0.8400, f1 0.6100" in note


def test_the_history_axis_leaves_degenerate_trials_off_and_says_how_many():
    from optuna.study import StudyDirection

    from lrsweep.report import history_range

    values = [0.83, 0.84, 0.835, 0.838, 0.5, 0.841, 0.5]
    low, high, hidden = history_range(values, StudyDirection.MAXIMIZE)
    assert hidden == 2 and 0.5 < low < 0.83 and high > 0.841
    assert history_range([0.4, 0.41, 0.42, 0.405, 0.9], StudyDirection.MINIMIZE)[2] == 1  # log loss: the high side
    assert history_range([0.8, 0.81, 0.82, 0.83], StudyDirection.MAXIMIZE)[2] == 0

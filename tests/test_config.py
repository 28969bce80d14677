"""lrsweep.config: Hydra composition of the shipped config dir, validate() and study_name()."""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

import lrsweep
from lrsweep.backends import capabilities_of
from lrsweep.backends.sklearn import SOLVER_PENALTIES
from lrsweep.cli import register_configs, to_config
from lrsweep.config import Config, SearchConfig, study_name, validate
from lrsweep.errors import LrsweepError
from lrsweep.thresholds import STRATEGIES, strategy_config

CONF = (Path(lrsweep.__file__).parent / "conf").resolve()
CSV = ["dataset.path=data.csv", "dataset.target=Outcome"]


@functools.cache
def _composed(overrides: tuple[str, ...]) -> Config:
    register_configs()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return to_config(compose("config", overrides=list(overrides)))


def compose_config(*overrides: str, **values) -> Config:
    """The typed config of ``lrsweep <overrides>`` (a fresh copy), then ``values`` set by dotted key.

    A Hydra compose costs ~0.15 s, so each distinct command line is composed once per session; setting a
    value on the typed copy stands for ``key=value`` on the command line (the schema has typed it already).
    """
    cfg = copy.deepcopy(_composed(tuple(overrides)))
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = cfg
        for name in parents:
            node = getattr(node, name)
        assert hasattr(node, leaf), dotted
        setattr(node, leaf, value)
    return cfg


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def assert_yaml_applied(section, path: Path, given: set[str] = frozenset()) -> None:
    """Every value the option's YAML file sets is what the typed config holds (except keys ``given``)."""
    for key, want in yaml.safe_load(path.read_text()).items():
        if key in given or key == "defaults":  # the defaults list names the option's schema
            continue
        got = getattr(section, key)
        if isinstance(want, dict):
            for k, v in want.items():
                assert getattr(got, k) == v, f"{path.name}: {key}.{k}"
        else:
            assert got == want, f"{path.name}: {key}"


# -- composition ------------------------------------------------------------------------------------------
def test_the_shipped_groups_have_the_documented_options():
    assert set(options("backend")) >= {"sklearn", "spark"}
    assert set(options("dataset")) >= {"telco_churn", "csv", "ctr"}
    assert set(options("cluster")) >= {"local", "standalone"}
    assert set(options("search")) >= {"default", "l1", "l2", "elasticnet"}
    assert set(options("threshold")) == set(STRATEGIES)
    assert set(options("tracking")) >= {"default", "off"}


def test_defaults_compose_and_validate():
    cfg = compose_config()
    assert isinstance(cfg, Config)
    validate(cfg)
    defaults = yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]
    chosen = {k: v for d in defaults if isinstance(d, dict) for k, v in d.items()}
    assert cfg.backend.name == chosen["backend"]
    assert cfg.search.name == chosen["search"]
    assert cfg.threshold.strategy == chosen["threshold"]
    assert cfg.dataset.name == chosen["dataset"]
    assert cfg.experiment_name == f"lrsweep-{cfg.dataset.name}"


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in ("backend", "cluster", "dataset", "search", "threshold", "tracking") for o in options(g)],
)
def test_every_option_composes_and_validates(group, option):
    extra = CSV if (group, option) == ("dataset", "csv") else []
    if (group, option) == ("cluster", "standalone"):
        extra = ["cluster.master=spark://10.0.0.5:7077"]
    cfg = compose_config(f"{group}={option}", *extra)
    given = {o.split("=")[0].split(".")[-1] for o in extra}
    assert_yaml_applied(getattr(cfg, group), CONF / group / f"{option}.yaml", given)
    if extra == CSV:
        assert (cfg.dataset.path, cfg.dataset.target) == ("data.csv", "Outcome")
        assert cfg.dataset.label == "data"
    validate(cfg)
    validate(cfg, capabilities_of("spark"))  # a backend without a solver choice accepts every option too


def test_overrides_reach_the_typed_config():
    cfg = compose_config(
        "backend=spark", "search=elasticnet", "search.n_trials=7", "search.C.low=0.01", "threshold=recall_at",
        "threshold.min_recall=0.9", "seed=3", "cv.folds=5", "split.val_size=0.25",
    )  # fmt: skip
    assert cfg.backend.name == "spark"
    assert cfg.search.n_trials == 7 and cfg.search.C.low == 0.01 and cfg.search.penalties == ["elasticnet"]
    assert cfg.threshold.strategy == "recall_at" and cfg.threshold.min_recall == 0.9
    assert (cfg.seed, cfg.cv.folds, cfg.split.val_size) == (3, 5, 0.25)
    validate(cfg)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["dataset.foo=1"], "dataset.foo"),
        (["search=nope"], "nope"),
        (["search.n_trials=abc"], "search.n_trials"),
        (["threshold=f1", "threshold.cost_fn=3"], "threshold.cost_fn"),  # another strategy's knob
        (["backend=sklearn", "backend.bins=10"], "backend.bins"),  # a Spark setting under scikit-learn
        (["threshold=recall_at", "threshold.min_recal=0.9"], "threshold.min_recal"),
    ],
)
def test_unknown_keys_options_and_wrong_types_fail_at_compose_time(overrides, needle):
    """Also the settings of another option than the one chosen: each option has only its own."""
    register_configs()
    with (
        initialize_config_dir(version_base="1.3", config_dir=str(CONF)),
        pytest.raises((HydraException, OmegaConfBaseException)) as info,
    ):
        compose("config", overrides=overrides)
    assert needle in str(info.value)


# -- impossible values ------------------------------------------------------------------------------------
def test_solver_unable_to_fit_the_penalty_is_refused_from_the_command_line():
    cfg = compose_config("search.solvers=[lbfgs]", "search.penalties=[l1]")
    with pytest.raises(LrsweepError) as info:
        validate(cfg)
    assert "search.solvers" in str(info.value) and "l1" in str(info.value)
    # backends without a solver choice (Spark) do not check solvers
    validate(cfg, capabilities_of("spark"))


@pytest.mark.parametrize(
    ("option", "values", "key"),
    [
        ("search=default", {"search.C.low": 0.0}, "search.C.low"),
        ("search=default", {"search.C.low": -1.0}, "search.C.low"),
        ("search=l2", {"search.C.high": 0.0}, "search.C.high"),
        ("search=l1", {"search.C.low": float("nan")}, "search.C.low"),
        ("search=default", {"search.C.low": 10.0, "search.C.high": 1.0}, "search.C.low"),
        ("search=elasticnet", {"search.l1_ratio.high": 1.5}, "search.l1_ratio"),
        ("search=elasticnet", {"search.l1_ratio.low": -0.1}, "search.l1_ratio"),
        ("search=default", {"search.l1_ratio.low": 0.9, "search.l1_ratio.high": 0.1}, "search.l1_ratio"),
        ("search=elasticnet", {"search.solvers": ["liblinear"]}, "search.solvers"),
        ("search=default", {"search.solvers": ["nope"]}, "search.solvers"),
        ("search=default", {"search.solvers": []}, "search.solvers"),
        ("search=default", {"search.penalties": ["l3"]}, "search.penalties"),
        ("search=default", {"search.penalties": []}, "search.penalties"),
        ("search=default", {"search.n_trials": 0}, "search.n_trials"),
        ("search=l1", {"search.n_trials": -3}, "search.n_trials"),
        ("search=default", {"search.n_jobs": 0}, "search.n_jobs"),
        ("search=default", {"search.sampler": "nope"}, "search.sampler"),
        ("search=default", {"search.class_weight": ["heavy"]}, "search.class_weight"),
        ("search=default", {"search.max_iter": 0}, "search.max_iter"),
        ("search=default", {"split.val_size": 0.0}, "split.val_size"),
        ("search=default", {"split.val_size": 1.0}, "split.val_size"),
        ("search=default", {"split.test_size": -0.1}, "split.test_size"),
        ("search=default", {"split.val_size": 0.5, "split.test_size": 0.45}, "split.val_size + split.test_size"),
        ("threshold=f1", {"threshold.strategy": "nope"}, "threshold.strategy"),
        ("threshold=f1", {"threshold.strategy": "F1"}, "threshold.strategy"),
        ("threshold=recall_at", {"threshold.min_recall": 1.2}, "threshold.min_recall"),
        ("threshold=precision_at", {"threshold.min_precision": -0.2}, "threshold.min_precision"),
        ("threshold=fixed", {"threshold.value": 2.0}, "threshold.value"),
        ("threshold=searched", {"threshold.low": 0.9, "threshold.high": 0.1}, "threshold.low"),
        ("threshold=cost", {"threshold.cost_fp": -1.0}, "threshold.cost_fp"),
        ("threshold=cost", {"threshold.cost_fp": 0.0, "threshold.cost_fn": 0.0}, "threshold.cost_fn"),
        ("search=default", {"cv.folds": 0}, "cv.folds"),
        ("search=default", {"objective.metric": "nope"}, "objective.metric"),
        ("search=default", {"dataset.format": "xlsx"}, "dataset.format"),
        ("tracking=default", {"tracking.mode": "sometimes"}, "tracking.mode"),
    ],
)
def test_impossible_values_raise_naming_the_key(option, values, key):
    cfg = compose_config(option, **values)
    validate(compose_config(option))  # the option itself is fine
    with pytest.raises(LrsweepError) as info:
        validate(cfg)
    assert key in str(info.value)
    assert info.value.fix  # every refusal says what to do


@pytest.mark.parametrize("penalty", ["none", "l2", "l1", "elasticnet"])
def test_each_penalty_validates_exactly_with_a_solver_able_to_fit_it(penalty):
    for solver, fams in SOLVER_PENALTIES.items():
        cfg = Config(search=SearchConfig(penalties=[penalty], solvers=[solver]))
        if penalty in fams:
            validate(cfg)
        else:
            with pytest.raises(LrsweepError, match=re.escape(penalty)):
                validate(cfg)


@pytest.mark.parametrize("missing", ["dataset.path", "dataset.target"])
def test_csv_dataset_without_path_or_target_is_refused(missing):
    given = [o for o in CSV if not o.startswith(missing)]
    with pytest.raises(LrsweepError) as info:
        validate(compose_config("dataset=csv", *given))
    assert missing in str(info.value)


def test_validate_accepts_every_threshold_strategy():
    for st in STRATEGIES:
        validate(Config(threshold=strategy_config(st)))


# -- study names ------------------------------------------------------------------------------------------
def test_study_name_is_stable_and_readable():
    register_configs()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        fresh = to_config(compose("config"))  # not the cached copy
    assert study_name(fresh) == study_name(compose_config())
    assert re.fullmatch(r"lrsweep-telco_churn-sklearn-default-[0-9a-f]{8}", study_name(fresh))


def test_study_name_is_stable_across_processes():
    code = "from lrsweep.config import Config, study_name; print(study_name(Config()))"
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == study_name(Config())


@pytest.mark.parametrize(
    ("overrides", "values"),
    [
        (["search=l1"], {}),
        (["search=l2"], {}),
        ([], {"search.C.low": 0.001}),
        ([], {"search.penalties": ["l2", "l1"]}),
        ([], {"search.class_weight": ["none"]}),
        ([], {"search.solvers": ["saga"]}),
        ([], {"search.sampler": "random"}),
        ([], {"search.max_iter": 200}),
        (["threshold=youden"], {}),
        (["threshold=recall_at"], {"threshold.min_recall": 0.9}),
        ([], {"objective.metric": "pr_auc"}),
        ([], {"split.test_size": 0.3}),
        ([], {"cv.folds": 5}),
        ([], {"seed": 7}),
        (["backend=spark"], {}),
        (["dataset=csv", *CSV], {}),
    ],
)
def test_study_name_changes_when_the_search_changes(overrides, values):
    assert study_name(compose_config(*overrides, **values)) != study_name(compose_config())


@pytest.mark.parametrize(
    ("overrides", "values"),
    [
        (["search.n_trials=7"], {}),
        ([], {"search.n_trials": 5000}),
        ([], {"search.n_jobs": 2}),
        (["tracking=off"], {}),
        ([], {"tracking.uri": "sqlite:///elsewhere.db"}),
        ([], {"progress": False}),
        ([], {"study.dir": "/tmp/other"}),
    ],
)
def test_study_name_ignores_how_many_trials_and_where_they_are_logged(overrides, values):
    assert study_name(compose_config(*overrides, **values)) == study_name(compose_config())


def test_study_name_uses_an_explicit_name_verbatim():
    cfg = Config()
    cfg.study.name = "my-study"
    assert study_name(cfg) == "my-study"
    assert study_name(dataclasses.replace(Config(), seed=1)) != study_name(Config())


# -- the cluster group and generated, hashed data -------------------------------------------------------------
def test_a_standalone_cluster_needs_its_master():
    with pytest.raises(LrsweepError, match=r"cluster=standalone needs the master's URL"):
        validate(compose_config("backend=spark", "cluster=standalone"))
    with pytest.raises(LrsweepError, match=r"not a standalone master's URL.*spark://HOST:7077"):
        validate(compose_config("backend=spark", "cluster=standalone", "cluster.master='local[2]'"))
    cfg = compose_config("backend=spark", "cluster=standalone", "cluster.master=spark://127.0.0.1:7077")
    assert (cfg.cluster.name, cfg.cluster.master) == ("standalone", "spark://127.0.0.1:7077")
    assert compose_config().cluster.master == "local[*]"


def test_ctr_hashes_every_feature_the_true_model_uses():
    from lrsweep.datasets.ctr import FEATURE_COLUMNS

    cfg = compose_config("dataset=ctr", "dataset.rows=1000000")
    assert cfg.dataset.rows == 1_000_000 and cfg.dataset.hashed == list(FEATURE_COLUMNS)
    assert cfg.dataset.hash_features == 2**20 and cfg.dataset.drop == ["hour"]
    validate(cfg)
    # newton-cholesky would build a dense 2**20 x 2**20 Hessian: refused when named, left out when not
    cfg.search.solvers = ["saga", "newton-cholesky"]
    with pytest.raises(LrsweepError, match="newton-cholesky cannot fit sparse features \\(hashed, or"):
        validate(cfg)


@pytest.mark.parametrize(
    ("values", "key"),
    [({"dataset.hash_features": 1}, "dataset.hash_features"), ({"dataset.rows": 10}, "dataset.rows")],
)
def test_impossible_dataset_values_are_refused(values, key):
    cfg = compose_config("dataset=ctr", **values)
    with pytest.raises(LrsweepError, match=key.replace(".", r"\.")):
        validate(cfg)


def test_older_studies_keep_their_names():
    """Dataset fields added with generated/hashed data count only when set: issue 2's studies still resume."""
    assert study_name(Config()) == "lrsweep-telco_churn-sklearn-default-7fe05c5e"
    hashed = Config()
    hashed.dataset.hashed = ["contract"]
    assert study_name(hashed) != study_name(Config())


# Study names derived by lrsweep 0.1.0 before the schemas were split per option (commit f23666c): the same
# command lines must keep resuming the same studies.
GOLDEN_STUDY_NAMES = [
    ([], "lrsweep-telco_churn-sklearn-default-7fe05c5e"),
    (["search=l1"], "lrsweep-telco_churn-sklearn-l1-5adf182b"),
    (["search=l2"], "lrsweep-telco_churn-sklearn-l2-d812af24"),
    (["search=elasticnet"], "lrsweep-telco_churn-sklearn-elasticnet-a5635b14"),
    (["threshold=recall_at"], "lrsweep-telco_churn-sklearn-default-9d640252"),
    (["threshold=recall_at", "threshold.min_recall=0.9"], "lrsweep-telco_churn-sklearn-default-531553f3"),
    (["threshold=precision_at"], "lrsweep-telco_churn-sklearn-default-8a0b8907"),
    (["threshold=cost"], "lrsweep-telco_churn-sklearn-default-ab123e68"),
    (["threshold=fixed"], "lrsweep-telco_churn-sklearn-default-02794dd1"),
    (["threshold=searched"], "lrsweep-telco_churn-sklearn-default-ac6cc643"),
    (["threshold=youden"], "lrsweep-telco_churn-sklearn-default-cb7f63ad"),
    (["cv.folds=5"], "lrsweep-telco_churn-sklearn-default-744c0cf7"),
    (["seed=7"], "lrsweep-telco_churn-sklearn-default-f23476e9"),
    (["objective.metric=pr_auc"], "lrsweep-telco_churn-sklearn-default-68e394fa"),
    (["backend=spark"], "lrsweep-telco_churn-spark-default-b2112305"),
    (["backend=spark", "search=l2"], "lrsweep-telco_churn-spark-l2-c2d1fa4d"),
    (
        ["backend=spark", "cluster=standalone", "cluster.master=spark://127.0.0.1:7077"],
        "lrsweep-telco_churn-spark-default-b2112305",
    ),
    (["dataset=ctr"], "lrsweep-ctr-sklearn-default-4fae6811"),
    (["dataset=ctr", "dataset.rows=1000000"], "lrsweep-ctr-sklearn-default-e623e2bf"),
    (["dataset=ctr", "backend=spark", "search=l2", "search.max_iter=100"], "lrsweep-ctr-spark-l2-d47d875e"),
    (
        ["dataset=csv", "dataset.path=my.csv", "dataset.target=Outcome", "dataset.positive=yes"],
        "lrsweep-my-sklearn-default-a74fed30",
    ),
    (
        [
            "dataset=csv",
            "dataset.path=data/my.parquet",
            "dataset.target=y",
            "dataset.drop=[a,b]",
            "dataset.id_columns=[id]",
        ],
        "lrsweep-my-sklearn-default-449370d0",
    ),
    (["search.solvers=[lbfgs,liblinear]", "search.penalties=[l2,l1]"], "lrsweep-telco_churn-sklearn-default-7047623b"),
    (["tracking.experiment=custom"], "custom-sklearn-default-7fe05c5e"),
    (["split.val_size=0.25", "split.test_size=0.25"], "lrsweep-telco_churn-sklearn-default-2fd8c347"),
    (["search.sampler=random"], "lrsweep-telco_churn-sklearn-default-2854236e"),
    (["search.sampler=grid", "search.grid_points=3"], "lrsweep-telco_churn-sklearn-default-5c8805ec"),
]


@pytest.mark.parametrize(("overrides", "name"), GOLDEN_STUDY_NAMES, ids=[n for _, n in GOLDEN_STUDY_NAMES])
def test_existing_command_lines_keep_their_study_names(overrides, name):
    assert study_name(compose_config(*overrides)) == name


@pytest.mark.parametrize(
    ("overrides", "schema"),
    [
        ([], "F1Threshold"),
        (["threshold=recall_at"], "RecallAtThreshold"),
        (["threshold=cost"], "CostThreshold"),
        (["backend=spark"], "SparkConfig"),
        (["backend=sklearn"], "BackendConfig"),
        (["cluster=standalone"], "StandaloneCluster"),
        ([], "LocalCluster"),
    ],
)
def test_each_option_composes_onto_its_own_schema(overrides, schema):
    cfg = compose_config(*overrides)
    assert schema in {type(cfg.threshold).__name__, type(cfg.backend).__name__, type(cfg.cluster).__name__}


def test_a_key_appended_with_plus_is_refused_not_dropped():
    register_configs()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        composed = compose("config", overrides=["+dataset.foo=1"])
    with pytest.raises(LrsweepError, match="unknown config key 'dataset.foo'"):
        to_config(composed)


def test_a_knob_of_another_threshold_strategy_no_longer_changes_the_study():
    """Under threshold=f1 the cost strategy's knobs do not exist, so they cannot start a new study."""
    import dataclasses as dc

    f1 = compose_config("threshold=f1")
    assert {f.name for f in dc.fields(f1.threshold)} == {"strategy", "of_class"}  # (of_class: every strategy's)
    assert study_name(compose_config("threshold=cost", "threshold.cost_fn=3")) != study_name(
        compose_config("threshold=cost")
    )


def test_the_multi_class_settings_keep_existing_study_names_at_their_defaults():
    """Issue 14 added search.multiclass, dataset.max_classes and threshold.of_class: a study made before them keeps
    its name (and resumes) while they are at their defaults; set away from them, they make another study."""
    base = study_name(compose_config())
    assert study_name(compose_config("search.multiclass=multinomial", "dataset.max_classes=20")) == base
    for override in ("search.multiclass=ovr", "search.multiclass=both", "threshold.of_class=Yes"):
        assert study_name(compose_config(override)) != base, override

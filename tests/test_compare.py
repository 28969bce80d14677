"""`lrsweep compare`: rows, sorting and the three formats from run objects built in memory; the errors of the
command; and one end-to-end run over a store of real sweeps made through the CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from lrsweep import cli
from lrsweep.compare import as_csv, as_markdown, as_table, columns, main, rows, sort_column, sort_rows
from lrsweep.errors import LrsweepError
from tests.data.servers import refused_port
from tests.e2e_helpers import cli_in_process, mlflow_runs, run_cli


# -- run objects shaped like mlflow.entities.Run ---------------------------------------------------------------
@dataclass
class Info:
    run_id: str
    run_name: str = ""
    experiment_id: str = "1"
    status: str = "FINISHED"
    start_time: int = 0


@dataclass
class Data:
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    info: Info
    data: Data


def call(**record: Any) -> str:
    return json.dumps({"started": "2026-12-01 10:00:00", "n_trials": 10, **record})


def parent(
    run_id: str, start: int, *, objective: str = "roc_auc", calls: tuple[str, ...] = (), experiment: str = "1",
    metrics: dict[str, float] | None = None, strategy: str = "f1", status: str = "FINISHED",
    backend: str = "sklearn", dataset: str = "telco_churn", name: str | None = None,
) -> Run:  # fmt: skip
    tags = {
        "lrsweep.kind": "sweep",
        "lrsweep.backend": backend,
        "lrsweep.dataset": dataset,
        "lrsweep.study": f"study-{run_id}",
        **{f"lrsweep.invocation.{i:03d}": c for i, c in enumerate(calls, 1)},
    }
    params = {"objective.metric": objective, "threshold.strategy": strategy, "seed": "42", "search.name": "l2"}
    params["cv.folds"] = "1"
    name = name if name is not None else f"l2 {strategy} seed=42 #{run_id:0>8} {backend} {dataset}"
    return Run(Info(run_id, name, experiment, status, start), Data(tags, params, dict(metrics or {})))


def child(parent_id: str, state: str | None, status: str = "FINISHED") -> Run:
    tags = {"lrsweep.kind": "trial", "mlflow.parentRunId": parent_id}
    if state:
        tags["lrsweep.state"] = state
    return Run(Info(f"c-{parent_id}-{state}", status=status), Data(tags))


def metrics(roc: float, **more: float) -> dict[str, float]:
    base = {"val_roc_auc": roc - 0.01, "best_val_roc_auc": roc - 0.01, "test_roc_auc": roc, "test_f1": 0.6}
    base |= {"test_log_loss": 0.45, "test_tp": 261.0, "threshold": 0.3125}
    return base | more


@pytest.fixture
def store() -> tuple[list[Run], list[Run]]:
    old = parent("aa", 1_000, calls=(call(status="FINISHED", wall_seconds=12.5),), metrics=metrics(0.84))
    new = parent(
        "bb", 2_000, experiment="2", strategy="recall_at",
        calls=(call(status="KILLED", reason="killed"), call(status="FINISHED", wall_seconds=30.25)),
        metrics=metrics(0.85, spend_usd=1.75, test_log_loss_excess=0.02),
    )  # fmt: skip
    children = [child("aa", "COMPLETE"), child("aa", "COMPLETE"), child("aa", "PRUNED", "KILLED")]
    children += [child("aa", "FAIL", "FAILED"), child("aa", "COMPLETE", "RUNNING")]  # half-written: not counted
    children += [child("bb", None, "FINISHED"), child("bb", None, "KILLED"), child("zz", "COMPLETE")]
    return [old, new], children


# -- rows -----------------------------------------------------------------------------------------------------
def test_one_row_per_parent_newest_first_with_its_trials_grouped_by_parent(store):
    runs, children = store
    table = rows(runs, children, {"1": "lrsweep-telco_churn", "2": "churn_course"})
    assert [r["run_id"] for r in table] == ["bb", "aa"]
    new, old = table
    assert (old["complete"], old["pruned"], old["failed"]) == (2, 1, 1)
    # no state tag: the run status says it (FINISHED -> complete, KILLED -> pruned)
    assert (new["complete"], new["pruned"], new["failed"]) == (1, 1, 0)
    assert (new["experiment"], old["experiment"]) == ("churn_course", "lrsweep-telco_churn")
    assert old["best_val"] == runs[0].data.metrics["val_roc_auc"] and old["objective"] == "roc_auc"
    assert old["wall_seconds"] == 12.5 and old["wall_partial"] is False and old["calls"] == 1
    # the killed call recorded no time: the sum is a lower bound, marked
    assert new["wall_seconds"] == 30.25 and new["wall_partial"] is True and new["calls"] == 2
    assert new["cost_usd"] == 1.75 and old["cost_usd"] is None
    assert new["threshold_strategy"] == "recall_at" and new["threshold"] == 0.3125
    assert old["test_tp"] == 261 and isinstance(old["test_tp"], int)
    assert old["test_pr_auc"] is None  # a metric the run lacks is empty, not missing
    assert list(old) == columns(table) and "test_log_loss_excess" in old  # every test metric a sweep logged
    assert (old["seed"], old["cv_folds"], old["search"], old["study"]) == (42, 1, "l2", "study-aa")


def test_best_val_falls_back_to_the_best_so_far_series():
    run = parent("cc", 5, objective="pr_auc", metrics={"best_val_pr_auc": 0.61, "val_roc_auc": 0.8})
    (row,) = rows([run], [])
    assert row["best_val"] == 0.61 and row["wall_seconds"] is None and row["calls"] == 0


# -- sorting --------------------------------------------------------------------------------------------------
def _sweeps() -> list[dict[str, Any]]:
    runs = [
        parent("r1", 1, metrics=metrics(0.80, test_log_loss=0.40), calls=(call(wall_seconds=90.0),)),
        parent("r2", 2, metrics=metrics(0.86, test_log_loss=0.50, spend_usd=3.0), calls=(call(wall_seconds=10.0),)),
        parent("r3", 3, metrics=metrics(0.83, test_log_loss=0.45, spend_usd=1.0), calls=(call(wall_seconds=50.0),)),
        parent("r4", 4, metrics={"test_f1": 0.7}, calls=(call(wall_seconds=5.0),)),  # no roc_auc, no log_loss
    ]
    return rows(runs, [])


@pytest.mark.parametrize(
    "column, expected",
    [
        ("test_roc_auc", ["r2", "r3", "r1", "r4"]),  # higher first; a sweep without it last
        ("roc_auc", ["r2", "r3", "r1", "r4"]),  # the text table's header
        ("test_log_loss", ["r1", "r3", "r2", "r4"]),  # lower first
        ("wall_seconds", ["r4", "r2", "r3", "r1"]),
        ("wall", ["r4", "r2", "r3", "r1"]),
        ("cost_usd", ["r3", "r2", "r4", "r1"]),  # cheapest first; unknown cost last, newest first among them
        ("started", ["r4", "r3", "r2", "r1"]),
        ("sweep", ["r1", "r2", "r3", "r4"]),  # text A to Z
    ],
)
def test_sort_puts_the_best_first(column, expected):
    assert [r["run_id"] for r in sort_rows(_sweeps(), column)] == expected


def test_best_val_sorts_each_sweep_by_its_own_objective():
    runs = [
        parent("ll", 1, objective="log_loss", metrics={"val_log_loss": 0.30}),
        parent("au", 2, metrics={"val_roc_auc": 0.85}),
        parent("lo", 3, metrics={"val_roc_auc": 0.60}),
    ]
    table = rows(runs, [])
    # best first by each objective's direction: log_loss 0.30 is good (as -0.30), an AUC of 0.60 is poor
    assert [r["run_id"] for r in sort_rows(table, "best_val")] == ["au", "lo", "ll"]


def test_an_unknown_sort_column_names_the_valid_ones():
    with pytest.raises(LrsweepError) as err:
        sort_rows(_sweeps(), "speed")
    line = err.value.line()
    assert sort_column("acc") == "test_accuracy" and sort_column("Wall") == "wall_seconds"  # the table's headers
    assert "unknown sort column 'speed'" in line and "test_roc_auc" in line and "wall_seconds" in line
    assert "\n" not in line


# -- formats --------------------------------------------------------------------------------------------------
def test_csv_round_trips_every_column_at_full_precision(store):
    table = rows(*store)
    back = list(csv.DictReader(io.StringIO(as_csv(table))))
    assert len(back) == len(table) and list(back[0]) == columns(table)
    for want, got in zip(table, back, strict=True):
        assert got["run_id"] == want["run_id"]
        assert float(got["test_roc_auc"]) == want["test_roc_auc"]  # exactly: repr, not 4 decimals
        assert float(got["best_val"]) == want["best_val"]
        assert int(got["complete"]) == want["complete"]
        assert got["wall_partial"] == str(want["wall_partial"]).lower()
        assert got["test_pr_auc"] == ""  # None is an empty cell
    assert back[0]["cost_usd"] == "1.75" and back[1]["cost_usd"] == ""


def test_markdown_is_one_pipe_table_with_every_test_metric(store):
    runs, children = store
    runs[0].info.run_name = "a | b #000000aa"  # a pipe in a cell must not split it
    text = as_markdown(rows(runs, children))
    lines = text.splitlines()
    table = lines[: lines.index("")] if "" in lines else lines
    assert len(table) == 2 + len(runs)
    cells = [len(line.replace("\\|", "").split("|")) for line in table]
    assert all(line.startswith("| ") or line.startswith("|-") for line in table) and len(set(cells)) == 1
    assert set(table[1].strip("|").split("|")) <= {"---", "---:"}
    header = table[0]
    for metric in ("test roc_auc", "test f1", "test log_loss"):
        assert metric in header
    assert "test pr_auc" not in header  # no sweep logged it
    assert "a \\| b" in text
    assert "30.2s+" in text and "killed" in lines[-1]  # the mark, explained under the table


def test_text_table_fits_120_columns_and_says_what_every_row_shares(store):
    runs, children = store
    for r in runs:
        r.info.experiment_id = "1"
    runs.append(parent("cc", 3_000, name="elasticnet recall_at(min_recall=0.8) cv=5 objective=pr_auc seed=7 #0000cccc"))
    text = as_table(rows(runs, children, {"1": "lrsweep-telco_churn"}), title="3 sweeps")
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    assert lines[0] == "3 sweeps"
    assert "experiment lrsweep-telco_churn" in lines[1] and "backend sklearn" in lines[1]
    assert lines[2].split()[0] == "sweep" and "experiment" not in lines[2]  # said once, not in a column
    assert "usd" in lines[2]  # a sweep has a cost
    assert "#0000cccc" in text  # a long name is cut but keeps its study id
    assert "2/1/1" in text and "30.2s+" in text and "l2 recall_at seed=42 #000000bb" in text


def test_text_table_of_several_experiments_shortens_names_to_fit_keeping_what_tells_them_apart():
    runs = [
        parent(
            f"{i:02d}",
            i,
            experiment=str(i % 2),
            name=f"elasticnet recall_at(min_recall=0.8) cv=5 seed={i} #0000{i:04d}",
        )
        for i in range(4)
    ]
    lines = as_table(rows(runs, [], {"0": "lrsweep-telco_churn", "1": "churn_recall_floor_preset"})).splitlines()
    assert max(map(len, lines)) <= 120
    assert lines[1].split()[:2] == ["experiment", "sweep"]
    cells = [line.split("  ")[0].strip() for line in lines[2:-1]]
    # the longer name is cut from the left, at a word (its end tells lrsweep-<dataset> experiments apart)
    assert cells == ["..recall_floor_preset", "lrsweep-telco_churn"] * 2
    assert all(f"#0000{i:04d}" in line for i, line in zip((3, 2, 1, 0), lines[2:-1], strict=True))


def test_text_table_has_the_varying_columns_and_no_cost_column_without_costs():
    runs = [parent("r1", 1, experiment="1"), parent("r2", 2, experiment="2", backend="spark", dataset="ctr")]
    header = as_table(rows(runs, [], {"1": "exp-one", "2": "exp-two"})).splitlines()[1].split()
    assert header[:4] == ["experiment", "sweep", "backend", "dataset"] and "usd" not in header


# -- the command ----------------------------------------------------------------------------------------------
def _cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["lrsweep", *argv])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_missing_sqlite_store_is_one_line_saying_where_sweeps_write_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, err = _cli(["compare"], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("lrsweep: error: no MLflow store at ")
    assert str(tmp_path / "mlflow.db") in err and "sqlite:///mlflow.db in the directory they run in" in err
    assert not (tmp_path / "mlflow.db").exists()  # nothing created


def test_an_unreachable_server_is_one_line_without_its_password(monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with refused_port() as port:
        uri = f"http://user:s3cret@127.0.0.1:{port}"
        code, out, err = _cli(["compare", "--tracking-uri", uri], monkeypatch, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "cannot read the MLflow store http://user:***@127.0.0.1" in err and "server is up" in err
    assert "s3cret" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["--sort", "speed"], "unknown sort column 'speed'; use one of: experiment, sweep"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line(argv, message, monkeypatch, capsys):
    code, out, err = _cli(["compare", *argv], monkeypatch, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err


def test_compare_is_dispatched_before_hydra_and_imports_mlflow_only_to_read(tmp_path):
    probe = (
        "import sys\n"
        "sys.argv = ['lrsweep', 'compare', '--tracking-uri', 'sqlite:///missing/mlflow.db']\n"
        "from lrsweep import cli\n"
        "try:\n    cli.main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print(code, 'hydra' in sys.modules, 'mlflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False", "False"], proc.stderr
    assert "no MLflow store at" in proc.stderr


def test_help_lists_the_commands_that_read_mlflow(tmp_path):
    text = cli._help(tmp_path)
    assert "lrsweep compare [EXPERIMENT ...]" in text
    assert "lrsweep reproduce RUN_ID" in text and "lrsweep export RUN_ID --out DIR" in text


# -- end to end -----------------------------------------------------------------------------------------------
FAST = ["search.n_trials=3", "tracking.log_model=false", "tracking.artifacts=false", "progress=false"]


@pytest.mark.slow
def test_compare_lists_real_sweeps_as_mlflow_holds_them(tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    # two studies in two experiments; the second with another search, seed and threshold strategy
    for extra in ([], ["search=l2", "seed=7", "threshold=recall_at", "tracking.experiment=compare-other"]):
        proc = cli_in_process([*FAST, *extra], tmp_path)  # the sweeps compare reads: made in this process
        assert proc.returncode == 0, proc.stderr[-3000:]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parents = mlflow_runs(tmp_path)[0] + mlflow_runs(tmp_path, "compare-other")[0]
    children = mlflow_runs(tmp_path)[1] + mlflow_runs(tmp_path, "compare-other")[1]
    assert len(parents) == 2 and len({p.data.tags["lrsweep.study"] for p in parents}) == 2
    states = {p.info.run_id: Counter() for p in parents}
    for c in children:
        states[c.data.tags["mlflow.parentRunId"]][c.data.tags["lrsweep.state"]] += 1

    # the text table: one row per study, newest first, with its trial counts
    proc = run_cli(["compare"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "2 sweeps in 2 experiments of sqlite:///mlflow.db, newest first"  # the default store
    newest_first = sorted(parents, key=lambda p: p.info.start_time, reverse=True)
    ids = ["#" + p.data.tags["lrsweep.study"].rsplit("-", 1)[1] for p in newest_first]
    body = [line for line in lines if any(i in line for i in ids)]
    assert len(body) == 2 and all(i in line for i, line in zip(ids, body, strict=True))
    for p, line in zip(newest_first, body, strict=True):
        s = states[p.info.run_id]
        assert f"{s['COMPLETE']}/{s['PRUNED']}/{s['FAIL']}" in line.split()
        assert f"{p.data.metrics['test_roc_auc']:.4f}" in line.split()

    # CSV, sorted by test ROC AUC: every figure as MLflow holds it
    proc = run_cli(["compare", "--format", "csv", "--sort", "test_roc_auc"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = list(csv.DictReader(io.StringIO(proc.stdout)))
    by_auc = sorted(parents, key=lambda p: p.data.metrics["test_roc_auc"], reverse=True)
    assert [r["run_id"] for r in got] == [p.info.run_id for p in by_auc]
    client = MlflowClient(tracking_uri=uri)
    for r, p in zip(got, by_auc, strict=True):
        s = states[p.info.run_id]
        assert (int(r["complete"]), int(r["pruned"]), int(r["failed"])) == (s["COMPLETE"], s["PRUNED"], s["FAIL"])
        assert sum(s.values()) == int(p.data.metrics["finished_trials"])
        objective = p.data.params["objective.metric"]
        assert r["objective"] == objective and float(r["best_val"]) == p.data.metrics[f"val_{objective}"]
        assert float(r["test_f1"]) == p.data.metrics["test_f1"] and float(r["threshold"]) == p.data.metrics["threshold"]
        assert r["threshold_strategy"] == p.data.params["threshold.strategy"]
        calls = [json.loads(v) for k, v in p.data.tags.items() if k.startswith("lrsweep.invocation.")]
        assert float(r["wall_seconds"]) == pytest.approx(sum(c["wall_seconds"] for c in calls))
        assert r["experiment"] == client.get_experiment(p.info.experiment_id).name
        assert r["cost_usd"] == "" and r["status"] == "FINISHED"

    # an unknown experiment: one line naming the ones there are, exit 2
    proc = run_cli(["compare", "no-such-experiment"], tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("lrsweep: error: unknown experiment")
    assert "compare-other, lrsweep-telco_churn" in proc.stderr

    # in this process (MLflow is imported already): one experiment, as Markdown in a file
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # read_store's defaults, kept out of other tests
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    capsys.readouterr()
    assert main(["lrsweep-telco_churn", "--format", "markdown", "--out", "sweeps.md"]) == 0
    assert capsys.readouterr().out == ""
    md = (tmp_path / "sweeps.md").read_text().splitlines()
    (default_sweep,) = mlflow_runs(tmp_path)[0]
    name = default_sweep.info.run_name.removesuffix(" sklearn telco_churn")
    assert len(md) == 3 and f"| lrsweep-telco_churn | {name} | sklearn | telco_churn |" in md[2]
    # an experiment without sweeps (every store has Default): a sentence, exit 0
    assert main(["Default", "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out.startswith(f"No lrsweep sweeps in experiment Default of {uri}")

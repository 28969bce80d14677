"""What a user sees of lrsweep's sweeps in the real MLflow UI, read from the page headless Chromium renders.

Three CLI calls against a real ``mlflow server``: two different sweeps of the bundled data and a top-up of the
first. The runs table must then show one parent row per study, each with every trial of its study nested
under it, and a Dataset column naming the parts of the data. What the REST API holds is only the expectation;
every check reads the DOM. Screenshots go to the test's tmp_path and to /tmp/ui-shots/.

Chromium is Debian's (``make test`` installs it); Playwright drives it and never downloads a browser.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser import launched
from tests.e2e_helpers import cli_in_process, mlflow_runs, study_trials
from tests.mlflow_server import mlflow_server

pytestmark = pytest.mark.slow

SHOTS = Path("/tmp/ui-shots")  # a copy of every screenshot, for a person to look at
UI_TIMEOUT_MS = 60_000  # a hang guard: every wait below ends as soon as its element is there
FAST = ["search.solvers=[lbfgs,liblinear,newton-cholesky]", "search.penalties=[l2,l1]"]
# ag-grid keeps the pinned columns (checkbox, Run Name, Created) and the scrolled ones (Dataset, ...) in two
# containers, each with its own copy of a row (same row-id)
PINNED = ".ag-pinned-left-cols-container"
CENTER = ".ag-center-cols-container"
RUN_NAME = '[col-id="attributes.`Run Name`"]'
DATASET = '[col-id="attributes.`Dataset`"]'


@dataclass
class Swept:
    url: str  # the tracking server
    experiment_link: str  # the link the CLI printed, ?workflowType=machine_learning included
    sweep_link: str  # the first sweep's parent run, as the CLI printed it
    parents: dict[str, Any]  # run id -> parent run, read back over the REST API
    children: dict[str, set[str]]  # parent run id -> its child run ids, over the REST API
    trials: dict[str, int]  # study -> finished trials, from the Optuna journals (not MLflow)
    study_of: dict[str, str]  # parent run id -> its study (the run's lrsweep.study tag)


def _links(proc: subprocess.CompletedProcess[str]) -> tuple[str, str, str]:
    """The experiment link, the parent run's link and its id, as printed in a call's summary."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    (experiment,) = re.findall(r"experiment: (\S+)", proc.stdout)
    ((sweep, run_id),) = re.findall(r"this sweep: (\S+/runs/([0-9a-f]{32})\S*)", proc.stdout)
    return experiment, sweep, run_id


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    """Two sweeps of the bundled data (the default, and 3-fold CV) and a top-up of the first, in one experiment
    of a real tracking server, which stays up for the module's tests."""
    folder = tmp_path_factory.mktemp("mlflow-ui")
    work = folder / "work"
    work.mkdir()
    # the server's job runner (GenAI scorers, trace archival: three more processes importing MLflow) is not
    # needed here, and on two cores it slows every call that runs while it starts
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # read by `mlflow server` alone
        with mlflow_server(folder) as url:
            track = [f"tracking.uri={url}", *FAST]
            # the CLI's main() in this process: the UI shows what the calls logged, not how they were started
            first = cli_in_process([*track, "search.n_trials=3"], work)
            other = cli_in_process([*track, "search.n_trials=3", "cv.folds=3"], work)
            top_up = cli_in_process([*track, "search.n_trials=5"], work)  # the first study, topped up to 5 trials
            (link, sweep, first_id), (*_, other_id), (*_, top_up_id) = _links(first), _links(other), _links(top_up)
            assert top_up_id == first_id, "the top-up opened a parent run of its own"
            parents, children = mlflow_runs(work, uri=url)
            studies = {p.info.run_id: p.data.tags["lrsweep.study"] for p in parents}
            trials = {name: sum(t.state.is_finished() for t in ts) for name, ts in study_trials(work).items()}
            assert sorted(trials.values()) == [3, 5] and set(studies.values()) == set(trials)
            assert set(studies) == {first_id, other_id}  # the parents the CLI linked to, and no other
            nested: dict[str, set[str]] = {p.info.run_id: set() for p in parents}
            for c in children:
                nested[c.data.tags["mlflow.parentRunId"]].add(c.info.run_id)
            yield Swept(url, link, sweep, {p.info.run_id: p for p in parents}, nested, trials, studies)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as chromium:
        yield chromium


def _page(browser: Any) -> Any:
    """A page in a fresh context: no local storage, so no workflow type remembered from an earlier visit."""
    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    return page


def _shoot(page: Any, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(shot, SHOTS / name)


def _rows(page: Any) -> list[tuple[str, int]]:
    """(run id, indent) of the rendered runs-table rows, top to bottom: how far right of the leftmost run name
    the row's run name starts, in pixels (MLflow nests a child run by indenting its name, not by grid level)."""
    rows = []
    for row in page.locator(f"{PINNED} [role=row]").all():
        box = row.locator(f"{RUN_NAME} a").bounding_box()
        assert box, f"row {row.get_attribute('row-id')} has no visible run name"
        rows.append((int(row.get_attribute("row-index")), row.get_attribute("row-id"), box["x"]))
    left = min(x for _, _, x in rows)
    return [(run_id, round(x - left)) for _, run_id, x in sorted(rows)]


def _name(page: Any, run_id: str) -> str:
    return page.locator(f'{PINNED} [row-id="{run_id}"] {RUN_NAME} a').inner_text().strip()


def _experiment_kind(swept: Swept) -> str | None:
    from mlflow import MlflowClient

    experiment_id = next(iter(swept.parents.values())).info.experiment_id
    return MlflowClient(tracking_uri=swept.url).get_experiment(experiment_id).tags.get("mlflow.experimentKind")


@pytest.fixture(scope="module")
def table(browser: Any, swept: Swept, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The experiment opened from the CLI's link, every parent row expanded (screenshots before and after);
    the tests using it only read it."""
    from playwright.sync_api import expect

    tmp_path = tmp_path_factory.mktemp("shots")
    page = _page(browser)
    page.goto(swept.experiment_link)
    rows = page.locator(f"{PINNED} [role=row]")
    expect(rows).to_have_count(len(swept.parents), timeout=UI_TIMEOUT_MS)  # collapsed: the parents alone
    _shoot(page, tmp_path, "runs-table.png")
    close_assistant = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close_assistant.count():  # the chat panel takes a third of the width: room for the table's columns
        close_assistant.click()
    for run_id in swept.parents:
        page.locator(f'{PINNED} [row-id="{run_id}"] {RUN_NAME} button').click()
    n_runs = len(swept.parents) + sum(len(c) for c in swept.children.values())
    expect(rows).to_have_count(n_runs, timeout=UI_TIMEOUT_MS)
    page.mouse.move(0, 0)  # no hover effects or focus ring from the clicks in the picture
    page.evaluate("document.activeElement && document.activeElement.blur()")
    _shoot(page, tmp_path, "runs-expanded.png")
    return page


def test_one_parent_row_per_study_with_every_trial_under_it(table, swept):
    page = table
    under: dict[str, list[str]] = {}
    parent = None
    rows = _rows(page)
    indents = sorted({indent for _, indent in rows})
    assert len(indents) == 2 and indents[0] == 0, f"not two levels of nesting: indents {indents} px"
    for run_id, indent in rows:
        if indent == 0:
            assert run_id not in under, f"parent {run_id} shown twice"
            parent, under[run_id] = run_id, []
        else:
            assert parent is not None, f"child row {run_id} above every parent row"
            under[parent].append(run_id)
    assert set(under) == set(swept.parents)  # one parent row per study, and no stray top-level run
    names = {run_id: _name(page, run_id) for run_id in under}
    assert len(set(names.values())) == len(names), f"parent rows share a name: {names}"
    for run_id, name in names.items():
        study = swept.study_of[run_id]
        assert name == swept.parents[run_id].info.run_name
        assert name.startswith("default f1 ") and f" #{study[-8:]} " in name, name
        assert name.endswith(" sklearn telco_churn"), name
        assert len(under[run_id]) == swept.trials[study], f"{name}: {len(under[run_id])} rows under it"
        assert set(under[run_id]) == swept.children[run_id]  # its own trials, each once
        assert all(_name(page, c).startswith("trial-") for c in under[run_id])
    assert sorted("cv=3" in n for n in names.values()) == [False, True]  # the names tell the sweeps apart


def test_dataset_column_names_the_parts_of_the_data(table, swept):
    page = table
    header = page.locator(f"[role=columnheader]{DATASET}")
    assert header.inner_text().strip() == "Dataset"
    rows = _rows(page)
    assert len(rows) == len(swept.parents) + sum(len(c) for c in swept.children.values())
    for run_id, _ in rows:
        is_parent = run_id in swept.parents
        parent = run_id if is_parent else next(p for p, c in swept.children.items() if run_id in c)
        digest = swept.parents[parent].data.params["data.sha256"][:16]  # the data's fingerprint, per the API
        shown = page.locator(f'{CENTER} [row-id="{run_id}"] {DATASET}').inner_text()
        for part in ["train", "validation", "test"]:
            label = f"telco_churn/{part} ({digest})"
            expected = is_parent or part != "test"  # a trial is fitted on train, scored on validation
            assert (label in shown) == expected, f"{'parent' if is_parent else 'trial'} {run_id}: {shown!r}"


def test_experiment_link_without_workflow_type_opens_the_genai_view(browser, swept, tmp_path):
    """MLflow 3.17 ignores the experiment's ``mlflow.experimentKind`` tag when it picks the view: without
    ``?workflowType=machine_learning`` it opens the GenAI overview, which is why the CLI's link carries it.
    If this fails because the runs table opened, MLflow honours the tag and the link could drop the parameter."""
    from playwright.sync_api import expect

    experiment = swept.experiment_link.split("?", 1)[0]
    assert _experiment_kind(swept) == "custom_model_development"  # the tag is there, and not what decides
    page = _page(browser)
    page.goto(experiment)
    # the UI redirects to the GenAI overview, which may open a "Detect Issues" popover: a modal that hides the
    # rest of the page from ARIA queries, hence CSS and URL rather than get_by_role
    expect(page).to_have_url(re.compile(r"/#/experiments/\d+/overview/\w+\?workflowType=genai$"), timeout=UI_TIMEOUT_MS)
    expect(page.locator("h1, h2", has_text=re.compile(r"^Overview$"))).to_be_visible(timeout=UI_TIMEOUT_MS)
    # its panels loaded: an empty traces dashboard (lrsweep logs no traces)
    expect(page.get_by_text("No data available").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    _shoot(page, tmp_path, "experiment-without-workflowType.png")
    assert page.locator("[role=grid] .ag-row").count() == 0  # no runs table
    # the same experiment from the CLI's link: the runs table
    page = _page(browser)
    page.goto(swept.experiment_link)
    expect(page.locator(f"{PINNED} [role=row]").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert "workflowType=machine_learning" in page.url


def test_the_sweep_link_opens_its_parent_run_in_the_model_training_view(browser, swept, tmp_path):
    """The summary's "this sweep" link opens the parent run with the model-training navigation (Runs, Models),
    not the GenAI one (Evaluation runs, Judges) that MLflow 3.17 picks for a run link without ``workflowType``."""
    from playwright.sync_api import expect

    run_id = swept.sweep_link.split("/runs/", 1)[1].split("?", 1)[0]
    assert "workflowType=machine_learning" in swept.sweep_link
    page = _page(browser)
    page.goto(swept.sweep_link)
    name = swept.parents[run_id].info.run_name
    expect(page.get_by_role("heading", name=name)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("link", name="Models", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    _shoot(page, tmp_path, "sweep-link.png")
    assert page.get_by_role("link", name="Evaluation runs").count() == 0
    assert "workflowType=machine_learning" in page.url
    # the same run without the parameter: the GenAI navigation, which is why the link carries it
    page = _page(browser)
    page.goto(swept.sweep_link.split("?", 1)[0])
    expect(page.get_by_role("heading", name=name)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("link", name="Evaluation runs")).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert page.get_by_role("link", name="Models", exact=True).count() == 0

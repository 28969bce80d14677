"""The one-page report (lrsweep.export.page): what the HTML says, that it needs no network, and its PDF.

The images are the sweep's own: lrsweep.report.write_artifacts draws them from a synthetic validation and test
part and a small real Optuna study, and the metrics come from lrsweep.metrics on the same scores, so the counts
the page quotes are the ones the confusion-matrix image shows. The slow tests open the page in Debian's
Chromium through Playwright (which never downloads a browser) and print it to PDF.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lrsweep.backends.base import coefficient_frame
from lrsweep.errors import LrsweepError
from lrsweep.export.page import COEFFICIENT_ROWS, PageInputs, find_chromium, render, write_pdf
from lrsweep.metrics import area_metrics, curve_from_scores, log_loss, metrics_at
from lrsweep.records import SweepResult
from tests.browser import CHROMIUM, launched

SHOTS = Path("/tmp/ui-shots")  # a copy of the screenshot, for a person to look at
IMAGES = (
    "roc_curve",
    "pr_curve",
    "confusion_matrix",
    "metric_vs_threshold",
    "optimization_history",
    "param_importances",
)
METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "balanced_accuracy", "roc_auc", "pr_auc", "log_loss")


# ---------------------------------------------------------------------------------------------------------------
# inputs: a small sweep's worth of real scores, metrics, study and plots


def _part(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (27 % positive) and probabilities that rank them well but not perfectly."""
    y = (rng.random(n) < 0.27).astype(int)
    scores = 1 / (1 + np.exp(-(1.8 * y - 1.4 + rng.normal(0, 1.1, n))))
    return y, scores


def _metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    curve = curve_from_scores(y, scores)
    return {**metrics_at(curve, curve.index_at(threshold)), **area_metrics(curve), "log_loss": log_loss(y, scores)}


def _study() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        c = trial.suggest_float("C", 1e-3, 1e2, log=True)
        penalty = trial.suggest_categorical("penalty", ["l2", "l1"])
        return 0.84 - 0.01 * abs(np.log10(c) + 0.5) - (0.005 if penalty == "l1" else 0.0)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=12)
    return study


def _coefficients(hashed: int = 0) -> Any:
    rows = [("(intercept)", "", ""), ("tenure", "", "per 1 SD"), ("MonthlyCharges", "", "per 1 SD")]
    rows += [("Contract", level, "one-hot") for level in ("Month-to-month", "One year", "Two year")]
    rows += [("PaymentMethod", level, "one-hot") for level in ("Electronic check", "Mailed check")]
    coef = np.array([-1.2, -0.8, 0.45, 0.7, -0.1, -0.65, 0.3, -0.05])
    buckets = np.random.default_rng(1).normal(0, 0.3, hashed) if hashed else None
    return coefficient_frame(rows, coef, buckets)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> PageInputs:
    """A churn-like sweep's page inputs, with the six PNGs write_artifacts draws."""
    from lrsweep.report import write_artifacts

    rng = np.random.default_rng(0)
    (yv, sv), (yt, st) = _part(rng, 400), _part(rng, 400)
    threshold = 0.3125
    study = _study()
    best = study.best_trial
    val, test = _metrics(yv, sv, threshold), _metrics(yt, st, threshold)
    result = SweepResult(
        study_name="churn_course",
        storage="journal.log",
        backend="sklearn",
        dataset="telco_churn",
        experiment="churn_course",
        objective="roc_auc",
        n_finished=12,
        n_new=12,
        states={"COMPLETE": 12},
        best_trial=best.number,
        best_params=best.params,
        best_value=best.value,
        threshold_strategy="f1",
        threshold=threshold,
        val_metrics=val,
        test_metrics=test,
        data={},
    )
    out = tmp_path_factory.mktemp("artifacts")
    written = write_artifacts(
        out,
        val_curve=curve_from_scores(yv, sv),
        test_scores=(yt, st),
        threshold=threshold,
        coefficients=None,
        study=study,
        result=result,
    )
    images = {name: (out / "plots" / f"{name}.png").read_bytes() for name in IMAGES}
    assert len([w for w in written if w.startswith("plots/")]) == len(IMAGES)
    return PageInputs(
        title="churn_course",
        question="Which customers are about to leave, catching at least most of them?",
        dataset="telco_churn",
        source="src/lrsweep/datasets/telco_churn.csv",
        target="Churn",
        positive="Yes",
        negative="No",
        rows={"train": 4225, "val": 1409, "test": 1409},
        positive_rate=float(np.r_[yv, yt].mean()),
        features={"numeric": ["tenure", "MonthlyCharges"], "categorical": ["Contract", "PaymentMethod"]},
        backend="sklearn",
        objective="roc_auc",
        best_value=float(best.value),
        threshold=threshold,
        threshold_strategy="f1",
        threshold_settings={},
        val_metrics={k: v for k, v in val.items() if k not in ("tp", "fp", "tn", "fn")},
        test_metrics=test,
        best_params={**best.params, "solver": "lbfgs", "class_weight": "balanced", "l1_ratio": 0.0, "solver_l2": "x"},
        trials={"COMPLETE": 12, "PRUNED": 2, "FAIL": 0},
        coefficients=_coefficients(),
        images=images,
        run_id="0123456789abcdef0123456789abcdef",
        created="2026-11-30 14:02 UTC",
        versions={"lrsweep.version": "0.4.0", "scikit-learn.version": "1.9.1", "optuna.version": "4.6.0"},
        command="lrsweep experiment=churn_course",
    )


class _Tables(HTMLParser):
    """The text of every cell of every table, by table id; and the attributes of every <img>."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str | None]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs))
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Tables:
    parser = _Tables()
    parser.feed(page)
    return parser


def _text(page: str) -> str:
    """The page's text as a reader sees it: tags gone, entities decoded, white space collapsed."""
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# ---------------------------------------------------------------------------------------------------------------
# render


def test_every_section_is_there(inputs: PageInputs) -> None:
    page = render(inputs)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for part in ("question", "data", "metrics", "threshold", "confusion", "curves", "coefficients", "search"):
        assert f'id="sec-{part}"' in page, part
    text = _text(page)
    assert "Which customers are about to leave, catching at least most of them?" in text
    answer = text.split("Answer:")[1].split("The data")[0]
    assert f"penalty = {inputs.best_params['penalty']}, C = " in answer and "solver = lbfgs" in answer
    assert "Churn = Yes when its score ≥ 0.3125" in answer and f"ROC AUC {inputs.test_metrics['roc_auc']:.4f}" in answer
    for fact in ("telco_churn", "src/lrsweep/datasets/telco_churn.csv", "positive class Yes", "7,043", "train 4,225"):
        assert fact in text, fact
    assert f"{inputs.positive_rate:.1%} of all rows are Churn = Yes" in text
    assert "4 (2 numeric, 2 categorical)" in text
    assert "complete 12 · pruned 2 · fail 0" in text and f"{inputs.best_value:.4f}" in text
    for fact in (inputs.run_id, "2026-11-30 14:02 UTC", "scikit-learn 1.9.1", "lrsweep experiment=churn_course"):
        assert fact in text, fact


def test_an_empty_question_says_what_was_swept(inputs: PageInputs) -> None:
    text = _text(render(replace(inputs, question="")))
    assert "Which regularised logistic regression best predicts Churn = Yes?" in text


def test_metrics_table_explains_each_metric_for_the_positive_class(inputs: PageInputs) -> None:
    rows = _parse(render(inputs)).tables["metrics"]
    assert rows[0] == ["Metric", "Validation", "Test", "What it means here"]
    by_name = {r[0].split(" ")[0].lower(): r for r in rows[1:]}
    assert len(rows) - 1 == len(METRICS)
    t = {k: int(inputs.test_metrics[k]) for k in ("tp", "fp", "tn", "fn")}
    precision, recall, specificity = by_name["precision"], by_name["recall"], by_name["specificity"]
    assert precision[2] == f"{inputs.test_metrics['precision']:.4f}"
    assert precision[1] == f"{inputs.val_metrics['precision']:.4f}"
    assert "Of the rows predicted Churn = Yes, the share that really are Yes" in precision[3]
    assert f"On test: {t['tp']} of {t['tp'] + t['fp']} predicted Yes were Yes" in precision[3]
    assert "Of the real Churn = Yes rows, the share the model finds" in recall[3]
    assert f"{t['tp']} of {t['tp'] + t['fn']} Yes rows were found" in recall[3]
    assert "Of the real Churn = No rows, the share the model correctly leaves out" in specificity[3]
    assert f"{t['tn']} of {t['tn'] + t['fp']} No rows were left out" in specificity[3]
    assert "rank a random Yes row above a random No row; 0.5 is chance" in by_name["roc"][3]
    assert "lower is better" in by_name["log"][3]
    assert "objective" in by_name["roc"][0]  # the searched metric is marked


def test_missing_and_nan_metrics_show_as_na(inputs: PageInputs) -> None:
    val = {**inputs.val_metrics, "roc_auc": float("nan")}
    test = {k: v for k, v in inputs.test_metrics.items() if k not in ("balanced_accuracy", "tp", "fp", "tn", "fn")}
    page = render(replace(inputs, val_metrics=val, test_metrics=test))
    by_name = {r[0].split(" ")[0].lower(): r for r in _parse(page).tables["metrics"][1:]}
    assert by_name["roc"][1] == "n/a" and by_name["balanced"][2] == "n/a"
    assert "On test:" not in by_name["precision"][3]  # no counts, no made-up figure
    cells = [c.split(" ")[:2] for r in _parse(page).tables["confusion"][1:] for c in r[1:]]
    assert cells == [["TN", "n/a"], ["FP", "n/a"], ["FN", "n/a"], ["TP", "n/a"]]


@pytest.mark.parametrize(
    ("strategy", "settings", "why"),
    [
        ("f1", {}, "the threshold with the best F1 on validation"),
        ("youden", {}, "largest recall − false-positive rate (Youden's J) on validation"),
        ("recall_at", {"min_recall": 0.8}, "the best precision among thresholds keeping validation recall ≥ 0.80"),
        ("precision_at", {"min_precision": 0.7}, "the best recall among thresholds with validation precision ≥ 0.70"),
        ("cost", {"cost_fp": 1.0, "cost_fn": 5.0}, "a false positive costing 1 and a false negative 5 on validation"),
        ("fixed", {"value": 0.5}, "fixed in the config at 0.5"),
        ("searched", {"low": 0.05, "high": 0.95}, "searched by Optuna like any parameter, in [0.05, 0.95]"),
    ],
)
def test_threshold_says_why_it_was_chosen(inputs: PageInputs, strategy: str, settings: dict, why: str) -> None:
    page = render(replace(inputs, threshold_strategy=strategy, threshold_settings=settings))
    section = _text(page.split('id="sec-threshold"')[1].split("</section>")[0])
    assert why.lower() in section.lower()
    assert "Threshold 0.3125" in section
    assert "a row is predicted Churn = Yes when its score ≥ 0.3125" in section
    assert "alt=" in page.split('id="sec-threshold"')[1].split("</section>")[0]  # the metric-vs-threshold plot


def test_an_unreachable_floor_is_said(inputs: PageInputs) -> None:
    page = render(replace(inputs, threshold_strategy="recall_at", threshold_settings={"min_recall": 0.999}))
    assert "No threshold reached that recall on validation" in _text(page)
    assert "No threshold reached" not in _text(render(replace(inputs, threshold_strategy="recall_at")))


def test_confusion_counts_are_labelled_with_the_classes(inputs: PageInputs) -> None:
    rows = _parse(render(inputs)).tables["confusion"]
    t = {k: f"{int(inputs.test_metrics[k]):,}" for k in ("tp", "fp", "tn", "fn")}
    reading = (
        f"Of the {int(inputs.test_metrics['tp'] + inputs.test_metrics['fn']):,} real Yes rows in test, {t['tp']} are"
    )
    assert reading in _text(render(inputs))
    assert rows[0] == ["Churn", "predicted No", "predicted Yes"]  # the plot's layout: the negative class first
    assert rows[1] == [
        "actually No",
        f"TN {t['tn']} No rows predicted No",
        f"FP {t['fp']} No rows predicted Yes (false alarms)",
    ]
    assert rows[2] == [
        "actually Yes",
        f"FN {t['fn']} Yes rows missed (predicted No)",
        f"TP {t['tp']} Yes rows predicted Yes",
    ]


def test_user_text_is_escaped(inputs: PageInputs) -> None:
    coefficients = _coefficients()
    coefficients.loc[1, "feature"] = '<img src="x" onerror="alert(1)">'
    evil = replace(
        inputs,
        target="<script>alert(1)</script>",
        positive='"Yes" & <b>',
        title="</title><script>",
        command="lrsweep dataset.path='<x>'",
        coefficients=coefficients,
    )
    page = render(evil)
    assert "<script" not in page.lower() and "onerror" not in page.split('id="coefficients"')[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&quot;Yes&quot; &amp; &lt;b&gt;" in page
    assert len(_parse(page).images) == len(IMAGES)  # the feature name made no <img>
    assert "&lt;img src=&quot;x&quot; onerror=&quot;alert(1)&quot;&gt;" in page


def test_images_are_embedded_pngs_with_alt_text(inputs: PageInputs) -> None:
    images = _parse(render(inputs)).images
    assert len(images) == len(IMAGES)
    embedded = set()
    for img in images:
        src = img["src"] or ""
        assert src.startswith("data:image/png;base64,") and img.get("alt")
        embedded.add(base64.b64decode(src.split(",", 1)[1]))
    assert embedded == set(inputs.images.values())


@pytest.mark.parametrize("missing", [IMAGES, ("roc_curve", "param_importances")])
def test_a_missing_image_is_a_note_not_a_broken_img(inputs: PageInputs, missing: tuple[str, ...]) -> None:
    images = {k: v for k, v in inputs.images.items() if k not in missing}
    page = render(replace(inputs, images={**images, "pr_curve": images.get("pr_curve", b"")}))
    assert len(_parse(page).images) == len(IMAGES) - len(missing)
    assert page.count("was not logged for this run") == len(missing)
    assert "ROC curve of the best model on test was not logged" in _text(page)


def test_a_long_coefficient_table_keeps_the_intercept_and_the_top_25(inputs: PageInputs) -> None:
    table = _coefficients(hashed=300)
    rows = _parse(render(replace(inputs, coefficients=table))).tables["coefficients"]
    assert rows[0] == ["Feature", "Level", "Scale", "Coefficient", "Odds ratio"]
    assert len(rows) - 1 == COEFFICIENT_ROWS + 1 and rows[1][0] == "(intercept)"
    shown = [float(r[3]) for r in rows[2:]]
    expected = table.iloc[1:]["coefficient"].abs().sort_values(ascending=False).head(COEFFICIENT_ROWS)
    np.testing.assert_allclose(np.abs(shown), expected.to_numpy(), atol=1e-4)
    left = len(table) - 1 - COEFFICIENT_ROWS
    assert f"{left:,} more coefficient(s) with smaller |coefficient| are left off" in _text(
        render(replace(inputs, coefficients=table))
    )


def test_a_short_coefficient_table_is_whole_and_explained(inputs: PageInputs) -> None:
    page = render(inputs)
    rows = _parse(page).tables["coefficients"]
    assert len(rows) - 1 == len(inputs.coefficients)  # type: ignore[arg-type]
    tenure = next(r for r in rows if r[0] == "tenure")
    assert tenure == ["tenure", "", "per 1 SD", "-0.8000", f"{np.exp(-0.8):.4f}"]
    text = _text(page)
    assert "multiplies the odds of Churn = Yes by this for one unit (numeric: one standard deviation) more" in text
    assert "left off" not in text
    assert "No coefficient table was logged" in _text(render(replace(inputs, coefficients=None)))


def test_best_configuration_shows_the_readable_parameters(inputs: PageInputs) -> None:
    config = next(t for t in _parse(render(inputs)).tables.values() if t and t[0] == ["Parameter", "Best value"])
    names = [r[0] for r in config[1:]]
    assert names[:2] == ["penalty", "C"] and "solver" in names and "class_weight" in names
    assert "l1_ratio" not in names and "solver_l2" not in names  # l1_ratio means nothing without elastic net


def test_the_page_needs_no_network(inputs: PageInputs) -> None:
    page = render(inputs)
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page, re.I)
    assert "@import" not in page and "url(" not in page
    for attr in re.findall(r'\b(?:src|href)="([^"]*)"', page):
        assert attr.startswith("data:image/png;base64,"), attr[:60]


# ---------------------------------------------------------------------------------------------------------------
# Chromium and the PDF, with fake executables


def _fake_chromium(folder: Path, body: str, name: str = "fake-chromium") -> Path:
    """An executable Python script standing in for Chromium; it sees argv like Chromium would."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    exe.chmod(0o755)
    return exe


def test_find_chromium_prefers_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _fake_chromium(tmp_path / "mine", "")
    on_path = _fake_chromium(tmp_path / "bin", "", name="chromium-browser")
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setenv("LRSWEEP_CHROMIUM", str(mine))
    assert find_chromium() == str(mine)
    monkeypatch.delenv("LRSWEEP_CHROMIUM")
    assert find_chromium() == str(on_path)
    monkeypatch.setenv("PATH", "")
    assert find_chromium() is None
    monkeypatch.setenv("LRSWEEP_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_chromium() is None  # a wrong setting is not silently replaced by another browser


def test_write_pdf_without_chromium_is_false(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRSWEEP_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setenv("PATH", "")
    (tmp_path / "report.html").write_text("<p>hi</p>")
    assert write_pdf(tmp_path / "report.html", tmp_path / "report.pdf") is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_failing_chromium_raises_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    exe = _fake_chromium(
        tmp_path / "bin",
        "sys.stderr.write('[1:2:1201/210305.03:ERROR:dbus/bus.cc:405] Failed to connect to the bus\\n'"
        "'[1:2:1201/210308.66:ERROR:components/headless/command_handler.cc:266] Page load failed: '"
        "'https://user:hunter2@example.org/x\\n'"
        "'[1:2:1201/210305.03:ERROR:dbus/object_proxy.cc:572] Failed to call method\\n\\n')\n"
        "sys.exit(3)",
    )
    (tmp_path / "report.html").write_text("<p>hi</p>")
    with pytest.raises(LrsweepError) as err:
        write_pdf(tmp_path / "report.html", tmp_path / "report.pdf", chromium=str(exe))
    line = str(err.value)
    assert "\n" not in line and "Page load failed" in line and "report.pdf" in line
    assert "hunter2" not in line and "dbus" not in line.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "report.html"]


def test_a_chromium_that_writes_no_pdf_raises(tmp_path: Path) -> None:
    exe = _fake_chromium(tmp_path / "bin", "sys.exit(0)")  # Chromium exits 0 even when it could not print
    (tmp_path / "report.html").write_text("<p>hi</p>")
    with pytest.raises(LrsweepError, match="no PDF written"):
        write_pdf(tmp_path / "report.html", tmp_path / "report.pdf", chromium=str(exe))
    assert not (tmp_path / "report.pdf").exists()


def test_write_pdf_prints_to_a_temporary_name_and_renames(tmp_path: Path) -> None:
    exe = _fake_chromium(
        tmp_path / "bin",
        "import json, pathlib\n"
        "out = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--print-to-pdf='))\n"
        "pathlib.Path(out).write_bytes(b'%PDF-1.4 fake')\n"
        "pathlib.Path(sys.argv[0]).with_name('argv.json').write_text(json.dumps(sys.argv[1:]))",
    )
    html = tmp_path / "report.html"
    html.write_text("<p>hi</p>")
    assert write_pdf(html, tmp_path / "report.pdf", chromium=str(exe)) is True
    assert (tmp_path / "report.pdf").read_bytes() == b"%PDF-1.4 fake"
    argv = json.loads((tmp_path / "bin" / "argv.json").read_text())
    assert argv[:4] == ["--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer"]
    assert argv[5] == html.resolve().as_uri()
    printed_to = Path(argv[4].split("=", 1)[1])
    assert printed_to.parent == tmp_path and printed_to.name != "report.pdf" and not printed_to.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "report.html", "report.pdf"]


# ---------------------------------------------------------------------------------------------------------------
# the real page in a real browser


@pytest.fixture
def browser() -> Iterator[Any]:
    with launched() as chromium:
        yield chromium


def _distinct_colours(png: bytes) -> int:
    from PIL import Image

    colours = Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours or [])


def assert_renders(browser: Any, report: Path, n_images: int, shot: Path) -> None:
    """``report`` in Chromium, offline: no console error, no request, the metrics table, every image loaded and
    not blank, ROC and PR side by side; a full-page screenshot to ``shot`` and to SHOTS."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    aborted: list[str] = []

    def offline(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            aborted.append(url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    messages: list[Any] = []
    errors: list[Any] = []
    page.on("console", lambda message: messages.append(message))  # Playwright wants a function, not a method
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(report.as_uri(), wait_until="load")

    assert not errors and not [m.text for m in messages if m.type == "error"]
    assert not aborted, f"the page asked the network for {aborted}"
    assert page.locator("#metrics").is_visible() and page.locator("#metrics tbody tr").count() >= 8
    images = page.locator("img").all()
    assert len(images) == n_images
    for img in images:
        alt = img.get_attribute("alt")
        assert img.evaluate("el => el.complete && el.naturalWidth > 0"), f"{alt} did not load"
        assert _distinct_colours(img.screenshot()) > 16, f"{alt} is blank"
    roc, pr = (page.locator(f'img[alt^="{name}"]').bounding_box() for name in ("ROC curve", "Precision-recall"))
    assert roc and pr and abs(roc["y"] - pr["y"]) < 2 and pr["x"] > roc["x"] + roc["width"]  # side by side

    page.screenshot(path=str(shot), full_page=True)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(shot, SHOTS / shot.name)
    context.close()


@pytest.mark.slow
def test_the_page_in_a_browser(inputs: PageInputs, browser: Any, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(render(inputs), encoding="utf-8")
    assert_renders(browser, report, len(IMAGES), tmp_path / "export-report.png")


@pytest.mark.slow
def test_the_page_prints_to_pdf(inputs: PageInputs, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium (make test does)")
    report, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    report.write_text(render(inputs), encoding="utf-8")
    assert write_pdf(report, pdf, chromium=str(CHROMIUM)) is True
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", data))
    assert 1 <= pages <= 4, f"{pages} A4 pages"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.pdf"]

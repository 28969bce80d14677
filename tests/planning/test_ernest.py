"""The Ernest model: NNLS recovers what generated the points, clamps what cannot be negative, and the design
helpers choose points that cover what is predicted."""

from __future__ import annotations

import numpy as np
import pytest

from lrsweep.planning.ernest import Ernest, Point, design, farthest_points, features, fit_nnls, identify, spread

GRID = [(s, m) for s in (1e4, 3e4, 1e5, 3e5) for m in (1, 2, 4, 8)]


def points(theta: tuple[float, float, float, float]) -> list[Point]:
    return [Point(s, m, float(features(s, m)[0] @ np.asarray(theta))) for s, m in GRID]


def test_features_are_ernests() -> None:
    assert features(1000.0, 4).tolist() == [[1.0, 250.0, pytest.approx(np.log(4)), 4.0]]
    with pytest.raises(ValueError):
        features(10.0, 0.5)


def test_nnls_recovers_known_non_negative_coefficients() -> None:
    theta = (2.0, 1e-4, 0.5, 0.3)
    model = Ernest.fit(points(theta))
    assert model.theta == pytest.approx(theta, rel=1e-6)
    assert model.rms_residual < 1e-9
    assert model.predict(1e6, 16) == pytest.approx(2.0 + 1e-4 * 1e6 / 16 + 0.5 * np.log(16) + 0.3 * 16)


def test_a_negative_coefficient_is_clamped_to_zero() -> None:
    # time that falls with more machines beyond the parallel term: least squares would make th3 negative
    pts = [Point(s, m, 5.0 + 1e-4 * s / m - 0.2 * m) for s, m in GRID if m <= 4]
    A = features([p.scale for p in pts], [p.machines for p in pts])
    unconstrained = np.linalg.lstsq(A / np.array([p.seconds for p in pts])[:, None], np.ones(len(pts)), rcond=None)[0]
    assert unconstrained[3] < 0  # the clamp below is doing something
    model = Ernest.fit(pts)
    assert all(v >= 0 for v in model.theta)
    assert model.theta[3] == 0.0
    assert model.predict(1e7, 64) > 0  # a clamped model never predicts a negative time


def test_relative_fit_weighs_small_and_large_times_alike() -> None:
    A = np.array([[1.0], [1.0]])
    theta, res = fit_nnls(A, np.array([1.0, 100.0]))
    # relative least squares of c ~ 1 and c ~ 100: (c - 1) + (c/100 - 1)/100 = 0 (the absolute fit gives 50.5)
    assert theta[0] == pytest.approx(1.01 / 1.0001)
    assert res.tolist() == pytest.approx([theta[0] - 1, (theta[0] - 100) / 100])
    with pytest.raises(ValueError):
        fit_nnls(A, np.array([0.0, 1.0]))


def test_terms_the_points_cannot_identify_stay_zero() -> None:
    one_machine = [Point(s, 1, 1.0 + 1e-4 * s) for s in (1e4, 1e5)]
    assert Ernest.fit(one_machine).theta[2:] == (0.0, 0.0)
    one_scale = [Point(1e4, 1, 3.0), Point(1e4, 2, 2.5)]
    model = Ernest.fit(one_scale)
    assert model.theta[1] == 0.0  # no size trend from one size: no extrapolation in rows
    A = identify(features([1.0, 1.0], [1, 1]), np.array([1.0, 1.0]), np.array([1, 1]))
    assert A[:, 1:].tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_round_trip() -> None:
    model = Ernest.fit(points((1.0, 2e-4, 0.1, 0.05)))
    again = Ernest.from_dict(model.to_dict())
    assert again == model
    assert "rms residual" in model.describe()


def test_design_starts_near_the_prediction_and_keeps_to_its_budget() -> None:
    full = design([0.1 / 9, 0.1 / 3, 0.1], [1, 2])
    # the largest sample on the most cores, then the other core count on the cheapest sample
    assert full[:2] == [(0.1, 2), (0.1 / 9, 1)]
    assert len(full) == 6 and len(set(full)) == 6
    some = design([0.1 / 3, 0.1], [1, 2], budget=3.2)
    assert some == [(0.1, 2), (0.1 / 3, 1), (0.1 / 3, 2)]  # a second size on 2 cores identifies the scale term
    assert design([0.1 / 3, 0.1], [1, 2], budget=0.1)[:2] == [(0.1, 2), (0.1 / 3, 1)]  # those two always


def test_design_covers_the_prediction_point() -> None:
    """The chosen points identify the model: the prediction at the full size has a finite variance."""
    chosen = design([0.025, 0.05, 0.1], [1, 2], budget=3.2)
    X = features([f / 0.1 for f, _ in chosen], [m for _, m in chosen])
    target = features(10.0, 2)[0]
    assert len({m for _, m in chosen}) == 2 and len({f for f, _ in chosen}) >= 2
    assert np.linalg.matrix_rank(X[:, [0, 1, 3]]) == 3
    assert target @ np.linalg.pinv(X.T @ X) @ target < np.inf


def test_farthest_points_cover_the_extremes_and_are_distinct() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 3))
    picks = farthest_points(X, 6)
    assert len(picks) == len(set(picks)) == 6
    assert int(np.argmin(X[:, 0])) in picks and int(np.argmax(X[:, 0])) in picks
    # every point lies nearer to a pick than the picks' mutual spacing would allow for a bad cover
    d = np.min(np.linalg.norm(X[:, None] - X[None, picks], axis=2), axis=1)
    assert d.max() < 0.75
    assert farthest_points([[1.0], [1.0], [1.0]], 3) == [0]  # identical points: one pick


def test_spread() -> None:
    assert spread(1e-4, 1e2, 4, log=True) == pytest.approx([1e-4, 1e-2, 1.0, 1e2])
    assert spread(0.0, 1.0, 3, log=False) == [0.0, 0.5, 1.0]
    assert spread(1.0, 100.0, 1, log=True) == [pytest.approx(10.0)]


def test_a_size_term_within_the_noise_is_not_extrapolated() -> None:
    """Two sizes whose times differ by noise only: the fit keeps no size term (tenfold extrapolation of noise);
    a real size effect is kept."""
    noisy = [Point(141, 1, 1.0), Point(141, 1, 1.2), Point(422, 1, 1.15), Point(422, 1, 1.3)]
    assert Ernest.fit(noisy).theta[1] == 0.0
    real = [Point(s, 1, 0.5 + 1e-4 * s * f) for s in (1e4, 3e4, 1e5) for f in (0.95, 1.05)]
    model = Ernest.fit(real)
    assert model.theta[1] == pytest.approx(1e-4, rel=0.1)
    assert model.predict(1e6, 1) == pytest.approx(0.5 + 100, rel=0.1)

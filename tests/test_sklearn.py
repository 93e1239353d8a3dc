"""csoftmax.sklearn.SoftmaxRegressionClassifier: scikit-learn's contract
(check_estimator), the same optimum as LogisticRegression, sample and class
weights, warm starts, partial_fit, threads, and the meta-estimators."""

import doctest
import os
import pickle
import subprocess
import sys
import unittest
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import csoftmax as cs  # noqa: E402
from csoftmax.sklearn import SoftmaxRegressionClassifier, _Objective  # noqa: E402

TIGHT = dict(tol=1e-10, max_iter=2000)
SKLEARN_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2])
# How close to LogisticRegression's coefficients and probabilities we must be.
# From scikit-learn 1.4 on it stops L-BFGS at a 64-eps relative decrease of its
# objective; 1.3 stops at scipy's default (about 2e-9), a few 1e-6 short.
AGREE = dict(rtol=1e-4, atol=1e-7) if SKLEARN_VERSION >= (1, 4) else dict(rtol=1e-3, atol=1e-4)


def blobs(n=240, d=5, q=3, seed=0, dtype=np.float64, spread=1.0):
    """q overlapping Gaussian clusters, standardised: a well-conditioned problem."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(q, d))
    y = rng.integers(0, q, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(dtype), y


def reference(C=1.0, **kwargs):
    return LogisticRegression(C=C, solver="lbfgs", **TIGHT, **kwargs)


def objective(X, y, W, b, sw, C):
    """The LogisticRegression objective, in plain float64 NumPy."""
    z = X @ W + b
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ce = -logp[np.arange(len(y)), y]
    return np.sum(sw * ce) / np.sum(sw) + (W**2).sum() / (2 * C * np.sum(sw))


# --------------------------------------------------- scikit-learn's checks --
@parametrize_with_checks(
    [
        SoftmaxRegressionClassifier(),
        # Some checks fit raw make_blobs data (spread 20) once per epoch in a
        # single batch; the default step 0.1 oscillates there, 0.01 does not.
        SoftmaxRegressionClassifier(solver="sgd", learning_rate=0.01),
        SoftmaxRegressionClassifier(n_jobs=1),
    ]
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_compatible_estimator(estimator, check):
    try:
        check(estimator)
    except unittest.SkipTest:
        raise
    except Exception as e:
        # Some releases' checks fail on their own with newer NumPy or joblib
        # (1.3's read-only memmap of a pickled estimator does): a check that
        # LogisticRegression fails alike says nothing about this estimator.
        try:
            check(LogisticRegression())
        except type(e) as same:
            if str(same) == str(e):
                pytest.xfail(f"LogisticRegression fails this check alike here: {e!r}")
        raise


# ------------------------------------------ the same optimum as sklearn's --
@pytest.mark.parametrize(
    "C, fit_intercept, weighted, class_weight",
    [
        (1.0, True, False, None),
        (0.05, True, True, None),
        (10.0, False, False, "balanced"),
        (2.0, True, True, {0: 0.5, 1: 2.0, 2: 1.0}),
    ],
)
def test_lbfgs_reaches_logistic_regressions_optimum(C, fit_intercept, weighted, class_weight):
    X, y = blobs(q=3, seed=1)
    y = y.copy()
    y[:30] = 1  # unbalanced classes, so that class weights matter
    sw = np.random.default_rng(2).uniform(0.2, 3.0, size=len(y)) if weighted else None
    kw = dict(fit_intercept=fit_intercept, class_weight=class_weight)
    ours = SoftmaxRegressionClassifier(C=C, **TIGHT, **kw).fit(X, y, sample_weight=sw)
    ref = reference(C, **kw).fit(X, y, sample_weight=sw)
    assert ours.coef_.shape == ref.coef_.shape == (3, 5)
    np.testing.assert_allclose(ours.coef_, ref.coef_, **AGREE)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, **AGREE)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), **AGREE)
    np.testing.assert_allclose(
        ours.decision_function(X), ref.decision_function(X), rtol=0, atol=10 * AGREE["atol"]
    )
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    if not fit_intercept:
        assert np.all(ours.intercept_ == 0)


def test_binary_problem_is_logistic_regression_at_twice_C():
    X, y = blobs(q=2, seed=3)
    ours = SoftmaxRegressionClassifier(C=0.3, **TIGHT).fit(X, y)
    ref = reference(C=0.6).fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape == (1, 5)
    assert ours.intercept_.shape == (1,)
    np.testing.assert_allclose(ours.coef_, ref.coef_, **AGREE)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, **AGREE)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), **AGREE)
    d = ours.decision_function(X)
    assert d.shape == (len(y),)
    np.testing.assert_allclose(ours.predict_proba(X)[:, 1], 1 / (1 + np.exp(-d)), rtol=1e-12)


def test_objective_and_gradient_match_numpy():
    X, y = blobs(n=50, d=4, q=3, seed=4)
    sw = np.random.default_rng(5).uniform(0, 2, size=50)
    theta = np.random.default_rng(6).normal(size=4 * 3 + 3)
    for weights in (None, sw):
        f = _Objective(X, y.astype(np.int64), weights, 3, 0.7, True)
        value, grad = f(theta)
        W, b = theta[:12].reshape(4, 3), theta[12:]
        s = np.ones(50) if weights is None else weights
        assert value == pytest.approx(objective(X, y, W, b, s, 0.7), rel=1e-12)
        # The gradient by central differences of the NumPy objective.
        h, fd = 1e-6, np.empty_like(theta)
        for i in range(theta.size):
            e = np.zeros_like(theta)
            e[i] = h
            up = objective(X, y, (theta + e)[:12].reshape(4, 3), (theta + e)[12:], s, 0.7)
            down = objective(X, y, (theta - e)[:12].reshape(4, 3), (theta - e)[12:], s, 0.7)
            fd[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_convergence_warning_when_max_iter_is_too_small():
    X, y = blobs(seed=7)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        clf = SoftmaxRegressionClassifier(max_iter=2, tol=1e-12).fit(X, y)
    assert clf.n_iter_ == 2


# ------------------------------------------------------- dtypes, labels --
def test_float32_is_computed_and_returned_in_float32():
    X, y = blobs(seed=8)
    c32 = SoftmaxRegressionClassifier(**TIGHT).fit(X.astype(np.float32), y)
    c64 = SoftmaxRegressionClassifier(**TIGHT).fit(X, y)
    assert c32.coef_.dtype == c32.intercept_.dtype == np.float32
    assert c64.coef_.dtype == np.float64
    X32 = X.astype(np.float32)
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        assert getattr(c32, method)(X32).dtype == np.float32
        assert getattr(c32, method)(X).dtype == np.float64  # float64 input wins
    np.testing.assert_allclose(c32.coef_, c64.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(c32.predict_proba(X32), c64.predict_proba(X), atol=1e-4)


def test_other_numbers_become_float64():
    X, y = blobs(seed=9)
    Xi = np.round(X * 10).astype(np.int32)
    clf = SoftmaxRegressionClassifier().fit(Xi, y)
    assert clf.coef_.dtype == np.float64
    ref = SoftmaxRegressionClassifier().fit(Xi.astype(np.float64), y)
    np.testing.assert_array_equal(clf.coef_, ref.coef_)


def test_string_labels_keep_their_type_and_order():
    X, y = blobs(q=3, seed=10)
    names = np.array(["trouser", "bag", "sneaker"])
    clf = SoftmaxRegressionClassifier().fit(X, names[y])
    assert clf.classes_.tolist() == ["bag", "sneaker", "trouser"]
    by_index = SoftmaxRegressionClassifier().fit(X, y)
    # classes_ sorted: trouser (0) moves last, its row of coef_ too.
    np.testing.assert_allclose(clf.coef_, by_index.coef_[[1, 2, 0]], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), names[by_index.predict(X)])
    assert clf.score(X, names[y]) == by_index.score(X, y)


def test_predict_log_proba_and_predict_agree_with_predict_proba():
    X, y = blobs(q=4, seed=11)
    clf = SoftmaxRegressionClassifier().fit(X, y)
    p = clf.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(p), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[p.argmax(axis=1)])


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="^y: .*one class"):
        SoftmaxRegressionClassifier().fit(np.zeros((4, 2)), ["a"] * 4)


def test_predict_before_fit_is_not_fitted_error():
    with pytest.raises(NotFittedError):
        SoftmaxRegressionClassifier().predict(np.zeros((2, 3)))


# ------------------------------------------------ sample and class weights --
@pytest.mark.parametrize("q", [2, 3])
def test_integer_sample_weights_equal_repeated_rows(q):
    X, y = blobs(n=90, q=q, seed=12)
    counts = np.random.default_rng(13).integers(0, 4, size=len(y))
    weighted = SoftmaxRegressionClassifier(**TIGHT).fit(X, y, sample_weight=counts)
    repeated = SoftmaxRegressionClassifier(**TIGHT).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts)
    )
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-6, atol=1e-9)


def test_class_weight_is_a_sample_weight_per_class():
    X, y = blobs(seed=14)
    cw = {0: 3.0, 1: 0.5, 2: 1.5}
    a = SoftmaxRegressionClassifier(class_weight=cw, **TIGHT).fit(X, y)
    b = SoftmaxRegressionClassifier(**TIGHT).fit(X, y, sample_weight=np.vectorize(cw.get)(y))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    "sample_weight, message",
    [(np.ones(5), "sample_weight: expected shape"), (-np.ones(6), "non-negative")],
)
def test_bad_sample_weights_are_refused(sample_weight, message):
    X, y = blobs(n=6, seed=15)
    with pytest.raises(ValueError, match=message):
        SoftmaxRegressionClassifier().fit(X, y, sample_weight=sample_weight)


# ----------------------------------------------------------- warm starts --
@pytest.mark.parametrize("q", [2, 3])
def test_warm_start_continues_from_the_optimum(q):
    X, y = blobs(q=q, seed=16)
    clf = SoftmaxRegressionClassifier(warm_start=True, tol=1e-8).fit(X, y)
    first, iters = clf.coef_.copy(), clf.n_iter_
    assert iters > 3
    clf.fit(X, y)  # already optimal: nothing left to do
    assert clf.n_iter_ == 0
    np.testing.assert_array_equal(clf.coef_, first)
    cold = clf.set_params(warm_start=False).fit(X, y)
    assert cold.n_iter_ == iters


def test_warm_start_refuses_other_classes():
    X, y = blobs(q=3, seed=17)
    clf = SoftmaxRegressionClassifier(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="^warm_start: "):
        clf.fit(X, y + 1)


# ------------------------------------------------------------------ sgd --
def test_sgd_takes_the_trainers_steps():
    X, y = blobs(n=300, d=6, q=4, seed=18)
    clf = SoftmaxRegressionClassifier(
        solver="sgd",
        learning_rate=0.2,
        momentum=0.9,
        batch_size=32,
        shuffle=False,
        C=0.5,
        max_iter=3,
        tol=None,
    ).fit(X, y)
    model = cs.SoftmaxRegression(6, 4, dtype=np.float64, init_std=0.0)
    opt = cs.SGD(lr=0.2, momentum=0.9, weight_decay=1 / (0.5 * 300))
    cs.Trainer(model, opt, batch_size=32, shuffle=False, progress=False).fit(X, y, epochs=3)
    np.testing.assert_allclose(clf.coef_, model.weight.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(clf.intercept_, model.bias, rtol=1e-12, atol=1e-15)
    assert clf.n_iter_ == 3


@pytest.mark.parametrize("weighted", [False, True])
def test_full_batch_sgd_converges_to_the_lbfgs_optimum(weighted):
    X, y = blobs(n=200, q=3, seed=19)
    sw = np.random.default_rng(20).uniform(0.1, 2.0, size=200) if weighted else None
    sgd = SoftmaxRegressionClassifier(
        solver="sgd",
        batch_size=200,
        learning_rate=1.0,
        momentum=0.5,
        max_iter=3000,
        tol=1e-14,
        n_iter_no_change=3,
        C=0.5,
    ).fit(X, y, sample_weight=sw)
    lbfgs = SoftmaxRegressionClassifier(C=0.5, **TIGHT).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(sgd.coef_, lbfgs.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sgd.intercept_, lbfgs.intercept_, rtol=1e-6, atol=1e-8)


def test_minibatch_sgd_with_weights_equals_sgd_on_repeated_rows_in_one_batch():
    X, y = blobs(n=40, q=3, seed=21)
    counts = np.random.default_rng(22).integers(1, 4, size=40)
    common = dict(solver="sgd", batch_size=1000, max_iter=20, tol=None, momentum=0.9, C=0.2)
    # One batch holds every row: the weighted step is the repeated data's step,
    # up to the order of the sums.
    a = SoftmaxRegressionClassifier(**common).fit(X, y, sample_weight=counts)
    b = SoftmaxRegressionClassifier(**common).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10, atol=1e-12)


def test_sgd_stops_early_once_the_loss_settles():
    X, y = blobs(seed=23)
    clf = SoftmaxRegressionClassifier(solver="sgd", tol=1e-3, max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert 5 < clf.n_iter_ < 500
    assert clf.score(X, y) > 0.8


def test_sgd_warns_when_max_iter_ends_it():
    X, y = blobs(seed=24)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        SoftmaxRegressionClassifier(solver="sgd", max_iter=2, random_state=0).fit(X, y)


def test_sgd_same_random_state_same_model_and_shuffling_matters():
    X, y = blobs(seed=25)
    kw = dict(solver="sgd", batch_size=16, max_iter=3, tol=None)
    a = SoftmaxRegressionClassifier(random_state=1, **kw).fit(X, y)
    b = SoftmaxRegressionClassifier(random_state=1, **kw).fit(X, y)
    c = SoftmaxRegressionClassifier(random_state=2, **kw).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


# ------------------------------------------------------------ partial_fit --
@pytest.mark.parametrize("q", [3, 2])
def test_partial_fit_epochs_equal_sgd_fit_epochs(q):
    X, y = blobs(q=q, seed=26)
    kw = dict(solver="sgd", batch_size=32, momentum=0.9, random_state=7)
    full = SoftmaxRegressionClassifier(max_iter=4, tol=None, **kw).fit(X, y)
    inc = SoftmaxRegressionClassifier(**kw)
    for _ in range(4):
        inc.partial_fit(X, y, classes=np.arange(q))
    assert inc.n_iter_ == 1
    # Two classes round-trip through coef_ = W1 - W0 between calls.
    same = np.testing.assert_array_equal if q > 2 else np.testing.assert_allclose
    same(inc.coef_, full.coef_)
    same(inc.intercept_, full.intercept_)


def test_partial_fit_continues_after_pickling():
    X, y = blobs(seed=27)
    kw = dict(solver="sgd", batch_size=32, momentum=0.9, random_state=3)
    a = SoftmaxRegressionClassifier(**kw).partial_fit(X, y, classes=[0, 1, 2])
    b = pickle.loads(pickle.dumps(a))
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_partial_fit_checks_its_classes():
    X, y = blobs(seed=28)
    clf = SoftmaxRegressionClassifier()
    with pytest.raises(ValueError, match="^classes: required"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:10], y[:10], classes=[0, 1, 2, 3])  # a class may be absent
    assert clf.classes_.tolist() == [0, 1, 2, 3] and clf.coef_.shape == (4, 5)
    with pytest.raises(ValueError, match="^classes: "):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="^y: the label 7"):
        clf.partial_fit(X[:3], [0, 7, 1])
    with pytest.raises(ValueError, match="^class_weight: 'balanced'"):
        clf.set_params(class_weight="balanced").partial_fit(X, y)


def test_partial_fit_string_labels_and_float32():
    X, y = blobs(q=2, seed=29, spread=2.0)
    labels = np.array(["no", "yes"])[y]
    clf = SoftmaxRegressionClassifier(learning_rate=0.5, random_state=0)
    for _ in range(20):
        clf.partial_fit(X.astype(np.float32), labels, classes=["yes", "no"])
    assert clf.classes_.tolist() == ["no", "yes"] and clf.coef_.dtype == np.float32
    best = SoftmaxRegressionClassifier().fit(X, labels).score(X, labels)
    assert clf.score(X, labels) > best - 0.03


# ----------------------------------------------------------------- threads --
def threads_seen_by_lbfgs(monkeypatch) -> list:
    """A list that gets csoftmax's thread count at each L-BFGS solve."""
    seen = []
    original = SoftmaxRegressionClassifier._lbfgs

    def spy(self, *args):
        seen.append(cs.get_num_threads())
        return original(self, *args)

    monkeypatch.setattr(SoftmaxRegressionClassifier, "_lbfgs", spy)
    return seen


def test_n_jobs_sets_the_threads_and_restores_them(monkeypatch):
    X, y = blobs(seed=30)
    cs.set_num_threads(2)
    seen = threads_seen_by_lbfgs(monkeypatch)
    one = SoftmaxRegressionClassifier(n_jobs=1).fit(X, y)
    assert seen == [1] and cs.get_num_threads() == 2
    p = one.predict_proba(X)
    assert cs.get_num_threads() == 2
    default = SoftmaxRegressionClassifier().fit(X, y)
    assert seen == [1, 2]
    np.testing.assert_allclose(default.predict_proba(X), p, rtol=1e-12)


@pytest.mark.parametrize("n_jobs, expected", [(-1, 0), (-2, -1), (3, 3)])
def test_n_jobs_counts_like_joblib(monkeypatch, n_jobs, expected):
    X, y = blobs(n=30, seed=35)
    cpus = len(os.sched_getaffinity(0))
    want = max(1, cpus + expected) if expected <= 0 else expected
    seen = threads_seen_by_lbfgs(monkeypatch)
    cs.set_num_threads(1)
    SoftmaxRegressionClassifier(n_jobs=n_jobs).fit(X, y)
    assert seen == [want] and cs.get_num_threads() == 1


def test_n_jobs_restores_threads_after_an_error():
    cs.set_num_threads(2)
    with pytest.raises(ValueError):
        SoftmaxRegressionClassifier(n_jobs=1).fit(np.zeros((3, 2)), [0, 0, 0])
    assert cs.get_num_threads() == 2


# --------------------------------------------------- meta-estimators, I/O --
def test_pipeline_grid_search_and_cross_val_score():
    X, y = blobs(n=300, q=3, seed=31, spread=1.5)
    X = X * 50 + 10  # the scaler has work to do
    pipe = make_pipeline(StandardScaler(), SoftmaxRegressionClassifier())
    assert pipe.fit(X, y).score(X, y) > 0.85
    grid = GridSearchCV(pipe, {"softmaxregressionclassifier__C": [1e-4, 1.0]}, cv=3).fit(X, y)
    assert grid.best_params_ == {"softmaxregressionclassifier__C": 1.0}
    assert grid.best_estimator_[-1].coef_.shape == (3, 5)
    cv = KFold(4, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv)
    by_hand = [clone(pipe).fit(X[tr], y[tr]).score(X[te], y[te]) for tr, te in cv.split(X)]
    np.testing.assert_array_equal(scores, by_hand)


def test_pickle_and_clone():
    X, y = blobs(seed=32)
    clf = SoftmaxRegressionClassifier(C=0.3, solver="sgd", tol=None, random_state=0, n_jobs=1)
    clf.fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(again.classes_, clf.classes_)
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params()
    assert not hasattr(fresh, "coef_") and not hasattr(fresh, "classes_")


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = blobs(seed=33)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    clf = SoftmaxRegressionClassifier().fit(df, y)
    assert clf.feature_names_in_.tolist() == list(df.columns)
    plain = SoftmaxRegressionClassifier().fit(X, y)
    assert not hasattr(plain, "feature_names_in_")
    np.testing.assert_array_equal(clf.predict_proba(df), plain.predict_proba(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[df.columns[::-1]])


def test_docstring_examples_run():
    import csoftmax.sklearn

    result = doctest.testmod(csoftmax.sklearn, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_importing_csoftmax_does_not_import_sklearn(tmp_path):
    code = "import sys, csoftmax; print('sklearn' in sys.modules)"
    # From a folder of its own, so the child imports the installed csoftmax,
    # not a checkout's source folder (which has no compiled core).
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------- bad arguments --
@pytest.mark.parametrize(
    "param, value, error",
    [
        ("solver", "newton-cg", ValueError),
        ("C", 0.0, ValueError),
        ("C", np.nan, ValueError),
        ("C", "1", TypeError),
        ("max_iter", 0, ValueError),
        ("max_iter", 2.5, TypeError),
        ("tol", -1e-3, ValueError),
        ("class_weight", "auto", ValueError),
        ("fit_intercept", "yes", TypeError),
        ("learning_rate", 0.0, ValueError),
        ("batch_size", 0, ValueError),
        ("momentum", 1.0, ValueError),
        ("n_iter_no_change", 0, ValueError),
        ("n_jobs", 0, ValueError),
        ("random_state", "seed", ValueError),
    ],
)
def test_bad_parameters_name_themselves(param, value, error):
    X, y = blobs(n=10, seed=34)
    clf = SoftmaxRegressionClassifier(**{param: value})
    with pytest.raises(error, match=f"^{param}: "):
        clf.fit(X, y)
    with pytest.raises(error, match=f"^{param}: "):
        clf.partial_fit(X, y, classes=[0, 1, 2])

"""A scikit-learn classifier on csoftmax's kernels: :class:`SoftmaxRegressionClassifier`.

scikit-learn is an optional dependency (``pip install 'csoftmax[sklearn]'``):
``import csoftmax`` never imports it, only ``import csoftmax.sklearn`` does.

The model is multinomial logistic (softmax) regression with an L2 penalty on
the weights, the intercept unpenalised.  Two solvers minimise the same
objective, scikit-learn's ``LogisticRegression`` objective

    sum_i s_i * CE(softmax(x_i @ W + b), y_i) / sum_i s_i
        + ||W||^2 / (2 * C * sum_i s_i)

where ``s_i`` are the sample weights times the class weights:

- ``"lbfgs"``: full-batch L-BFGS (``scipy.optimize.minimize``, method
  ``L-BFGS-B``) on the loss and gradient from csoftmax's fused kernel and
  two BLAS GEMMs per evaluation;
- ``"sgd"``: minibatch SGD (:class:`csoftmax.SGD`, with momentum), which is
  also what :meth:`SoftmaxRegressionClassifier.partial_fit` runs.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy import optimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from . import _core
from ._config import single_threaded_blas
from ._steps import step_route
from .functional import log_softmax, softmax
from .model import _ensure_blas
from .optim import SGD

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6: the same check as a method

    def _validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


__all__ = ["SoftmaxRegressionClassifier"]

_FLOATS = [np.float64, np.float32]  # kept as they are; anything else becomes float64
# compute_class_weight weighs "balanced" by the sample weights from 1.6 on,
# as LogisticRegression then does; before, it counts rows.
_CLASS_WEIGHT_TAKES_SW = "sample_weight" in inspect.signature(compute_class_weight).parameters


class SoftmaxRegressionClassifier(ClassifierMixin, BaseEstimator):
    """Multinomial logistic (softmax) regression on csoftmax's C kernels.

    A scikit-learn classifier: ``fit``, ``partial_fit``, ``predict``,
    ``predict_proba``, ``predict_log_proba``, ``decision_function`` and
    ``score``; it works in pipelines, grid searches, ``clone`` and pickle.
    Labels may be of any type (strings too); float32 input is computed in
    float32 (the fast path) and float64 in float64, other numbers become
    float64.  Dense input only.

    Parameters
    ----------
    solver : {"lbfgs", "sgd"}, default="lbfgs"
        ``"lbfgs"``: full-batch L-BFGS; reaches the same optimum as
        ``sklearn.linear_model.LogisticRegression(solver="lbfgs")`` (see
        ``C``).  ``"sgd"``: minibatch SGD with ``learning_rate``,
        ``batch_size``, ``momentum``, one epoch per iteration.
    C : float, default=1.0
        Inverse strength of the L2 penalty on the weights, exactly as in
        ``LogisticRegression``: the objective is the ``s``-weighted mean
        cross-entropy plus ``||W||^2 / (2 * C * sum(s))``, with ``s`` the
        sample weights times the class weights.  ``C=np.inf`` means no
        penalty.  With three or more classes a model fitted with ``C``
        minimises the objective of ``LogisticRegression(C=C)``.  With two
        classes this model is still multinomial (two weight vectors, both
        penalised), which is the binomial model of
        ``LogisticRegression(C=2 * C)``: the same ``coef_`` and
        ``intercept_`` at the optimum.  :meth:`partial_fit` treats each
        chunk as the whole data set, so ``sum(s)`` is the chunk's.
    fit_intercept : bool, default=True
        Learn an (unpenalised) intercept per class.
    max_iter : int, default=100
        Most L-BFGS iterations (``"lbfgs"``) or epochs (``"sgd"``).
    tol : float or None, default=1e-4
        ``"lbfgs"``: stop when the largest gradient component is at most
        ``tol`` (scipy's ``gtol``, as ``LogisticRegression`` does).
        ``"sgd"``: stop after ``n_iter_no_change`` epochs in a row whose
        penalised training loss is not ``tol`` below the best so far.
        None: ``"lbfgs"`` uses 0, ``"sgd"`` runs all ``max_iter`` epochs.
    class_weight : dict, "balanced" or None, default=None
        Weights per class label, multiplied into the sample weights
        (``"balanced"``: ``n_samples / (n_classes * bincount(y))``, counted
        with the sample weights where scikit-learn does).
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (the classes and the number
        of features must not change).
    learning_rate : float, default=0.1
        SGD step size (``"sgd"`` and :meth:`partial_fit`).
    batch_size : int, default=256
        SGD minibatch size; the last, partial batch of an epoch is kept.
    momentum : float, default=0.0
        SGD momentum in [0, 1), as in ``torch.optim.SGD``.
    n_iter_no_change : int, default=5
        ``"sgd"``: epochs without improvement before stopping (see ``tol``).
    shuffle : bool, default=True
        ``"sgd"``: shuffle the rows every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the SGD shuffling (unused by ``"lbfgs"``, which starts from
        zeros and is deterministic).
    n_jobs : int or None, default=None
        Threads for csoftmax's kernels and BLAS during ``fit``,
        ``partial_fit`` and prediction (-1: every CPU this process may use,
        -2: all but one, as in joblib); the previous thread counts are
        restored afterwards.  None leaves them as they are
        (:func:`csoftmax.set_num_threads`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        The weights, of the fitted data's dtype.  With two classes, one row
        as in ``LogisticRegression``: the weights of ``classes_[1]`` minus
        those of ``classes_[0]``, so ``decision_function`` gives the log-odds
        of ``classes_[1]``.
    intercept_ : ndarray of shape (n_classes,) or (1,)
        The intercepts (zeros without ``fit_intercept``); with two classes
        the difference, as for ``coef_``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The column names, when ``fit`` got a DataFrame with string column names.
    n_iter_ : int
        L-BFGS iterations, or SGD epochs, of the last ``fit`` (1 after
        ``partial_fit``).

    See Also
    --------
    csoftmax.SoftmaxRegression : the underlying model, without scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax.sklearn import SoftmaxRegressionClassifier
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.2], [0.1, 0.8]])
    >>> y = np.array(["cat", "dog", "dog", "cat"])
    >>> clf = SoftmaxRegressionClassifier(C=10.0).fit(X, y)
    >>> clf.predict([[0.0, 0.9], [1.0, 0.1]])
    array(['cat', 'dog'], dtype='<U3')
    >>> clf.predict_proba(X).shape, clf.coef_.shape
    ((4, 2), (1, 2))
    """

    def __init__(
        self,
        *,
        solver: str = "lbfgs",
        C: float = 1.0,
        fit_intercept: bool = True,
        max_iter: int = 100,
        tol: float | None = 1e-4,
        class_weight: dict | str | None = None,
        warm_start: bool = False,
        learning_rate: float = 0.1,
        batch_size: int = 256,
        momentum: float = 0.0,
        n_iter_no_change: int = 5,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.solver = solver
        self.C = C
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.momentum = momentum
        self.n_iter_no_change = n_iter_no_change
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ---------------------------------------------------------- fitting --
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SoftmaxRegressionClassifier:
        """Fit the model to (X, y) with the chosen solver.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; float32 stays float32, float64 stays float64.
        y : array-like of shape (n_samples,)
            Class labels of any type; at least two distinct ones.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight per sample (default: all ones).

        Returns
        -------
        self

        Examples
        --------
        >>> from csoftmax.sklearn import SoftmaxRegressionClassifier
        >>> clf = SoftmaxRegressionClassifier().fit([[0.0], [1.0], [2.0]], [0, 1, 2])
        >>> clf.classes_, clf.coef_.shape
        (array([0, 1, 2]), (3, 1))
        """
        self._check_params()
        x, y_arr = _validate_data(self, X, y, dtype=_FLOATS, order="C", y_numeric=False)
        check_classification_targets(y_arr)
        classes, labels = np.unique(y_arr, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"y: needs samples of at least 2 classes, but the data holds one class "
                f"only, {classes.tolist()[0]!r}"
            )
        labels = np.ascontiguousarray(labels.reshape(-1), dtype=np.int64)
        sw = self._sample_weight(sample_weight, x.shape[0], y_arr, classes)
        start = None
        if self.warm_start and hasattr(self, "coef_"):
            if not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"warm_start: the previous fit had the classes {self.classes_.tolist()}, "
                    f"this data has {classes.tolist()}"
                )
            start = self.coef_, self.intercept_
        q = classes.size
        W, b = _full_params(start, x.shape[1], q, x.dtype)
        with _threads(self.n_jobs):
            if self.solver == "lbfgs":
                self._lbfgs(x, labels, sw, W, b)
                self.__dict__.pop("_sgd_state", None)
            else:
                self._sgd_state = self._new_sgd_state()
                self.n_iter_ = self._sgd(x, labels, sw, W, b, self.max_iter, early_stop=True)
        self.classes_ = classes
        self._set_coef(W, b)
        return self

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> SoftmaxRegressionClassifier:
        """One SGD epoch over (X, y), continuing from the current model.

        Whatever ``solver`` says, this takes SGD steps (``learning_rate``,
        ``batch_size``, ``momentum``, ``shuffle``), carrying the momentum
        from one call to the next.  The L2 strength is that of a fit on this
        chunk alone: ``1 / (C * sum(sample_weight of the chunk))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels, each one of ``classes``.
        classes : array-like of shape (n_classes,), optional
            Every label the model will ever see; required on the first call
            (a later call may repeat it, unchanged).
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from csoftmax.sklearn import SoftmaxRegressionClassifier
        >>> clf = SoftmaxRegressionClassifier(random_state=0)
        >>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array(["a", "a", "b", "b"])
        >>> for _ in range(3):
        ...     clf = clf.partial_fit(X, y, classes=["a", "b"])
        >>> clf.coef_.shape, clf.n_iter_
        ((1, 1), 1)
        """
        self._check_params()
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight: 'balanced' needs the whole data set and is not supported by "
                "partial_fit; pass the weights as a dict, for example from "
                "sklearn.utils.class_weight.compute_class_weight('balanced', ...)"
            )
        first = not hasattr(self, "classes_")
        if classes is not None:
            given = np.unique(np.asarray(classes))
            if given.size < 2:
                raise ValueError(f"classes: expected at least 2 classes, got {given.tolist()}")
            if not first and not np.array_equal(given, self.classes_):
                raise ValueError(
                    f"classes: {given.tolist()} is not the classes of the first call to "
                    f"partial_fit, {self.classes_.tolist()}"
                )
        elif first:
            raise ValueError("classes: required on the first call to partial_fit")
        else:
            given = self.classes_
        x, y_arr = _validate_data(self, X, y, dtype=_FLOATS, order="C", reset=first)
        check_classification_targets(y_arr)
        unknown = ~np.isin(y_arr, given)
        if np.any(unknown):
            raise ValueError(
                f"y: the label {y_arr[unknown][:1].tolist()[0]!r} is not one of the classes "
                f"{given.tolist()}"
            )
        labels = np.ascontiguousarray(np.searchsorted(given, y_arr), dtype=np.int64)
        sw = self._sample_weight(sample_weight, x.shape[0], y_arr, given)
        dtype = x.dtype if first else self.coef_.dtype
        start = None if first else (self.coef_, self.intercept_)
        W, b = _full_params(start, x.shape[1], given.size, dtype)
        if first or getattr(self, "_sgd_state", None) is None:
            self._sgd_state = self._new_sgd_state()
        with _threads(self.n_jobs):
            self._sgd(np.asarray(x, dtype=dtype), labels, sw, W, b, 1, early_stop=False)
        self.classes_ = given
        self.n_iter_ = 1
        self._set_coef(W, b)
        return self

    # ------------------------------------------------------- prediction --
    def decision_function(self, X: Any) -> np.ndarray:
        """The scores ``X @ coef_.T + intercept_``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or (n_samples,) with two
        classes (the log-odds of ``classes_[1]``)

        Examples
        --------
        >>> from csoftmax.sklearn import SoftmaxRegressionClassifier
        >>> clf = SoftmaxRegressionClassifier().fit([[0.0], [1.0]], [0, 1])
        >>> clf.decision_function([[0.0], [1.0]]).shape
        (2,)
        """
        logits = self._logits(X)
        return logits[:, 1].copy() if logits.shape[1] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, the softmax of the scores, in the order of ``classes_``.

        Examples
        --------
        >>> from csoftmax.sklearn import SoftmaxRegressionClassifier
        >>> clf = SoftmaxRegressionClassifier().fit([[0.0], [1.0]], ["a", "b"])
        >>> float(clf.predict_proba([[0.5]]).sum())
        1.0
        """
        logits = self._logits(X)
        with _threads(self.n_jobs):
            return softmax(logits, out=logits)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed without forming the probabilities.

        Examples
        --------
        >>> import numpy as np
        >>> from csoftmax.sklearn import SoftmaxRegressionClassifier
        >>> clf = SoftmaxRegressionClassifier().fit([[0.0], [1.0]], ["a", "b"])
        >>> bool(np.allclose(np.exp(clf.predict_log_proba([[0.5]])), clf.predict_proba([[0.5]])))
        True
        """
        logits = self._logits(X)
        with _threads(self.n_jobs):
            return log_softmax(logits, out=logits)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (the first one on ties).

        Examples
        --------
        >>> from csoftmax.sklearn import SoftmaxRegressionClassifier
        >>> clf = SoftmaxRegressionClassifier(C=100.0).fit([[0.0], [1.0]], ["a", "b"])
        >>> clf.predict([[-1.0], [2.0]])
        array(['a', 'b'], dtype='<U1')
        """
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def _logits(self, X: Any) -> np.ndarray:
        """(n, n_classes) scores; with two classes [0, decision] (same softmax)."""
        check_is_fitted(self)
        x = _validate_data(self, X, dtype=_FLOATS, order="C", reset=False)
        dtype = np.result_type(x.dtype, self.coef_.dtype)
        x = np.asarray(x, dtype=dtype)
        coef = np.asarray(self.coef_, dtype=dtype)
        intercept = np.asarray(self.intercept_, dtype=dtype)
        if coef.shape[0] == 1:  # binary: the first class's score is 0
            W = np.zeros((coef.shape[1], 2), dtype)
            W[:, 1] = coef[0]
            b = np.array([0, intercept[0]], dtype)
        else:
            W = np.ascontiguousarray(coef.T)
            b = np.ascontiguousarray(intercept)
        out = np.empty((x.shape[0], W.shape[1]), dtype)
        _ensure_blas()
        with _threads(self.n_jobs):
            _core.linear_forward(x, W, b, out)
        return out

    # ----------------------------------------------------------- solvers --
    def _lbfgs(self, x: np.ndarray, labels: np.ndarray, sw: Any, W: np.ndarray, b: np.ndarray):
        """Minimise the objective from (W, b) with L-BFGS-B, as LogisticRegression does."""
        fun = _Objective(x, labels, sw, W.shape[1], float(self.C), bool(self.fit_intercept))
        theta0 = fun.pack(W, b)
        tol = 0.0 if self.tol is None else float(self.tol)
        # LogisticRegression's settings, so that both stop at the same point.
        res = optimize.minimize(
            fun,
            theta0,
            method="L-BFGS-B",
            jac=True,
            options={
                "maxiter": int(self.max_iter),
                "maxls": 50,
                "gtol": tol,
                "ftol": 64 * np.finfo(float).eps,
            },
        )
        if not np.all(np.isfinite(res.x)):
            raise ValueError("X: the fit diverged (non-finite weights); scale the features")
        fun.unpack(res.x, W, b)
        self.n_iter_ = int(min(res.nit, self.max_iter))
        if res.status != 0:
            message = res.message.decode() if isinstance(res.message, bytes) else res.message
            warnings.warn(
                f"lbfgs stopped before the gradient reached tol={self.tol} "
                f"after {self.n_iter_} iterations ({message}); increase max_iter, "
                f"scale the features, or fit float64 data",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _new_sgd_state(self) -> dict:
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        return {"seed": seed, "epoch": 0, "velocity": []}

    def _sgd(
        self,
        x: np.ndarray,
        labels: np.ndarray,
        sw: Any,
        W: np.ndarray,
        b: np.ndarray,
        epochs: int,
        *,
        early_stop: bool,
    ) -> int:
        """Run SGD epochs on (W, b) in place; returns how many ran."""
        n = x.shape[0]
        sw_sum = float(n) if sw is None else float(np.sum(sw))
        decay = 0.0 if math.isinf(self.C) else 1.0 / (float(self.C) * sw_sum)
        # Each row counts sw_i / mean(sw); a batch's gradient is then an
        # unbiased estimate of the weighted mean's.
        rel = None
        if sw is not None:
            r = sw * (n / sw_sum)
            rel = None if np.all(r == 1.0) else r.astype(x.dtype)
        state = self._sgd_state
        opt = SGD(lr=self.learning_rate, momentum=self.momentum, weight_decay=decay)
        opt.load_state_dict({**opt.state_dict(), "velocity": state["velocity"]})
        loop = _SGDLoop(x, labels, rel, W, b, self.fit_intercept, self.batch_size, opt)
        tol = self.tol if early_stop else None
        best, stalled, done = math.inf, 0, 0
        with single_threaded_blas():  # small GEMMs: BLAS threads only cost
            for _ in range(epochs):
                order = None
                if self.shuffle:
                    order = np.random.default_rng([state["seed"], state["epoch"]]).permutation(n)
                loss = loop.epoch(order) + 0.5 * decay * float(np.vdot(W, W))
                state["epoch"] += 1
                done += 1
                if not (np.isfinite(loss) and np.all(np.isfinite(W))):
                    raise ValueError(
                        f"learning_rate: SGD diverged at epoch {done} (non-finite loss); "
                        f"lower learning_rate={self.learning_rate} or scale the features"
                    )
                if tol is not None:
                    stalled = stalled + 1 if loss > best - tol else 0
                    best = min(best, loss)
                    if stalled >= self.n_iter_no_change:
                        break
        state["velocity"] = opt.state_dict()["velocity"]
        if early_stop and tol is not None and done == epochs and stalled < self.n_iter_no_change:
            warnings.warn(
                f"sgd ran max_iter={epochs} epochs before its loss settled (tol={tol}); "
                f"increase max_iter or adjust learning_rate",
                ConvergenceWarning,
                stacklevel=3,
            )
        return done

    # ---------------------------------------------------------- helpers --
    def _set_coef(self, W: np.ndarray, b: np.ndarray) -> None:
        if W.shape[1] == 2:
            self.coef_ = (W[:, 1] - W[:, 0])[None, :]
            self.intercept_ = np.array([b[1] - b[0]], dtype=b.dtype)
        else:
            self.coef_ = np.ascontiguousarray(W.T)
            self.intercept_ = b.copy()

    def _sample_weight(
        self, sample_weight: Any, n: int, y: np.ndarray, classes: np.ndarray
    ) -> np.ndarray | None:
        """Sample weights times class weights, float64, or None for all ones."""
        sw = None
        if sample_weight is not None:
            if isinstance(sample_weight, numbers.Number):
                sample_weight = np.full(n, sample_weight, dtype=np.float64)
            sw = check_array(
                sample_weight, ensure_2d=False, dtype=np.float64, input_name="sample_weight"
            )
            if sw.shape != (n,):
                raise ValueError(
                    f"sample_weight: expected shape ({n},), one weight per sample, got {sw.shape}"
                )
            if np.any(sw < 0):
                raise ValueError("sample_weight: weights must be non-negative")
        if self.class_weight is not None:
            kwargs = {"sample_weight": sw} if _CLASS_WEIGHT_TAKES_SW else {}
            per_class = compute_class_weight(self.class_weight, classes=classes, y=y, **kwargs)
            factor = per_class[np.searchsorted(classes, y)]
            sw = factor if sw is None else sw * factor
        if sw is not None and not np.sum(sw) > 0:
            raise ValueError("sample_weight: the weights (times class_weight) sum to zero")
        return sw

    def _check_params(self) -> None:
        if self.solver not in ("lbfgs", "sgd"):
            raise ValueError(f"solver: expected 'lbfgs' or 'sgd', got {self.solver!r}")
        _check_real("C", self.C, low=0.0, low_open=True, allow_inf=True)
        _check_bool("fit_intercept", self.fit_intercept)
        _check_int("max_iter", self.max_iter, 1)
        if self.tol is not None:
            _check_real("tol", self.tol, low=0.0)
        cw = self.class_weight
        if not (cw is None or isinstance(cw, dict) or (isinstance(cw, str) and cw == "balanced")):
            raise ValueError(f"class_weight: expected a dict, 'balanced' or None, got {cw!r}")
        _check_bool("warm_start", self.warm_start)
        _check_real("learning_rate", self.learning_rate, low=0.0, low_open=True)
        _check_int("batch_size", self.batch_size, 1)
        _check_real("momentum", self.momentum, low=0.0, high=1.0)
        _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        _check_bool("shuffle", self.shuffle)
        if self.n_jobs is not None:
            _check_int("n_jobs", self.n_jobs, None)
            if self.n_jobs == 0:
                raise ValueError("n_jobs: expected None, a positive count or -1, got 0")
        rs = self.random_state
        if not (rs is None or isinstance(rs, (numbers.Integral, np.random.RandomState))):
            raise ValueError(
                f"random_state: expected None, an int or a RandomState, got {type(rs).__name__}"
            )


class _Objective:
    """The L-BFGS objective over a flat float64 vector theta = [W.ravel(), b].

    One evaluation, without sample weights and for few classes: the
    trainer's fused kernel (loss and both gradients in one pass over X).
    Otherwise: GEMM into the logits, the fused cross-entropy kernel writing
    per-row losses and d loss / d logits in place, a row scaling for sample
    weights, GEMM for X^T G (the 1/sum(s) folded into its alpha).
    The buffers live as long as the fit; computation is in X's dtype, the
    loss is summed and the penalty added in float64.
    """

    def __init__(self, x, labels, sw, q, C, fit_intercept):
        n, d = x.shape
        dt = x.dtype
        self.x, self.labels, self.d, self.q = x, labels, d, q
        self.fit_intercept = fit_intercept
        sw_sum = float(n) if sw is None else float(np.sum(sw))
        self.lam = 0.0 if math.isinf(C) else 1.0 / (C * sw_sum)
        self.inv_sum = 1.0 / sw_sum
        self.sw = None if sw is None else np.asarray(sw, np.float64)
        self.row_scale = None if sw is None else (sw / sw_sum).astype(dt)[:, None]
        self.W = np.zeros((d, q), dt)
        self.b = np.zeros(q, dt)
        self.logits = np.empty((n, q), dt)
        self.rows = np.empty(n, dt)
        self.gw = np.empty((d, q), dt)
        self.gb = np.empty(q, dt)
        # Unweighted, few classes: the trainer's fused kernel gives the mean
        # loss and both gradients in one pass over X, without GEMM.
        self.work = None
        if sw is None and step_route(q) == "fused":
            self.labels = np.ascontiguousarray(labels, dtype=np.int64)
            self.work = np.empty(_core.train_step_workspace(dt.name, n, d, q), np.uint8)
        else:
            _ensure_blas()

    def pack(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        parts = [W.ravel()] + ([b] if self.fit_intercept else [])
        return np.concatenate(parts).astype(np.float64)

    def unpack(self, theta: np.ndarray, W: np.ndarray, b: np.ndarray) -> None:
        dq = self.d * self.q
        W[...] = theta[:dq].reshape(W.shape)
        if self.fit_intercept:
            b[...] = theta[dq:]

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.unpack(theta, self.W, self.b)
        if self.work is not None:
            loss_sum, _ = _core.train_step(
                self.x, None, self.labels, self.W, self.b, self.gw, self.gb, self.work,
                1.0, None, len(self.x),
            )
            return self._with_penalty(theta, loss_sum * self.inv_sum)
        logits = self.logits
        _core.linear_forward(self.x, self.W, self.b, logits)
        # Labels come from np.unique, in range: straight to the kernel.
        _core.cross_entropy_kernel(
            logits, self.labels, -100, None, None, 0.0, "none", self.rows, logits
        )
        if self.sw is None:
            loss = float(np.sum(self.rows, dtype=np.float64)) * self.inv_sum
            alpha = self.inv_sum
        else:
            loss = float(np.dot(self.sw, self.rows.astype(np.float64))) * self.inv_sum
            logits *= self.row_scale
            alpha = 1.0
        gb = self.gb if self.fit_intercept else None
        _core.linear_backward(self.x, logits, self.gw, gb, alpha)
        return self._with_penalty(theta, loss)

    def _with_penalty(self, theta: np.ndarray, loss: float) -> tuple[float, np.ndarray]:
        """The objective and its gradient from the data term's, in gw and gb."""
        dq = self.d * self.q
        w = theta[:dq]
        grad = np.empty_like(theta)
        np.multiply(w, self.lam, out=grad[:dq])
        grad[:dq] += self.gw.ravel()
        if self.fit_intercept:
            grad[dq:] = self.gb
        return loss + 0.5 * self.lam * float(np.dot(w, w)), grad


class _SGDLoop:
    """Minibatch SGD epochs on (W, b) in place, with per-row weights.

    The step of :class:`csoftmax.Trainer` (gather into reused buffers, GEMM,
    fused cross-entropy with the gradient over the logits, GEMM, in-place
    optimizer update), extended with sample weights and a frozen zero
    intercept, which the Trainer does not offer.
    """

    def __init__(self, x, labels, rel, W, b, fit_intercept, batch_size, opt):
        self.x, self.labels, self.rel = x, labels, rel
        self.W, self.b, self.opt = W, b, opt
        self.fit_intercept = bool(fit_intercept)
        n, dt = x.shape[0], x.dtype
        self.bs = rows = min(int(batch_size), max(n, 1))
        self.buf_x = np.empty((rows, x.shape[1]), dt)
        self.buf_y = np.empty(rows, np.int64)
        self.buf_r = None if rel is None else np.empty(rows, dt)
        self.buf_logits = np.empty((rows, W.shape[1]), dt)
        self.buf_rows = np.empty(rows, dt)
        self.gw = np.empty_like(W)
        self.gb = np.empty_like(b)
        _ensure_blas()

    def epoch(self, order: np.ndarray | None) -> float:
        """One pass over the rows in ``order`` (None: as stored); the mean loss."""
        x, labels, rel, bs = self.x, self.labels, self.rel, self.bs
        n = x.shape[0]
        params = (self.W, self.b) if self.fit_intercept else (self.W,)
        grads = (self.gw, self.gb) if self.fit_intercept else (self.gw,)
        gb = self.gb if self.fit_intercept else None
        total = 0.0
        for start in range(0, n, bs):
            m = min(bs, n - start)
            if order is None:
                xb, yb = x[start : start + m], labels[start : start + m]
                rb = None if rel is None else rel[start : start + m]
            else:
                idx = order[start : start + m]
                xb, yb = self.buf_x[:m], self.buf_y[:m]
                np.take(x, idx, axis=0, out=xb)
                np.take(labels, idx, out=yb)
                rb = None
                if rel is not None:
                    rb = self.buf_r[:m]
                    np.take(rel, idx, out=rb)
            logits = self.buf_logits[:m]
            _core.linear_forward(xb, self.W, self.b, logits)
            if rb is None:
                loss = _core.cross_entropy_kernel(
                    logits, yb, -100, None, None, 0.0, "mean", None, logits
                )
                total += float(loss) * m
            else:
                rows = self.buf_rows[:m]
                _core.cross_entropy_kernel(logits, yb, -100, None, None, 0.0, "none", rows, logits)
                total += float(np.dot(rows.astype(np.float64), rb))
                logits *= (rb / m)[:, None]
            _core.linear_backward(xb, logits, self.gw, gb)
            self.opt.step(params, grads)
        return total / n if n else math.nan


def _full_params(start: Any, d: int, q: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The (d, q) weights and (q,) bias to start from: zeros, or the fitted
    coef_/intercept_ (two classes: split evenly between the two columns,
    which is where the L2-penalised optimum puts them)."""
    W = np.zeros((d, q), dtype)
    b = np.zeros(q, dtype)
    if start is not None:
        coef, intercept = (np.asarray(a, dtype=np.float64) for a in start)
        rows = 1 if q == 2 else q
        if coef.shape != (rows, d) or intercept.shape != (rows,):
            raise ValueError(
                f"warm_start: the previous coef_ has shape {coef.shape}, this data needs "
                f"({rows}, {d})"
            )
        if q == 2:
            W[:, 1] = coef[0] / 2
            W[:, 0] = -W[:, 1]
            b[1] = intercept[0] / 2
            b[0] = -b[1]
        else:
            W[...] = coef.T
            b[...] = intercept
    return W, b


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _threads(n_jobs: int | None) -> Iterator[None]:
    """Run the block with n_jobs kernel and BLAS threads, then restore both."""
    if n_jobs is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    n = n_jobs if n_jobs > 0 else max(1, _cpu_count() + 1 + n_jobs)
    _ensure_blas()  # loads BLAS first, so the limit below covers it
    before = _core.get_num_threads()
    with threadpool_limits(limits=n, user_api="blas"):  # restores BLAS on exit
        _core.set_num_threads(n)
        try:
            yield
        finally:
            _core.set_num_threads(before)


def _check_real(
    name: str,
    value: Any,
    *,
    low: float,
    low_open: bool = False,
    high: float | None = None,
    allow_inf: bool = False,
) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    bad = (
        math.isnan(v)
        or (math.isinf(v) and not allow_inf)
        or v < low
        or (low_open and v == low)
        or (high is not None and v >= high)
    )
    if bad:
        lower = f"> {low}" if low_open else f">= {low}"
        upper = f" and < {high}" if high is not None else ""
        finite = "" if allow_inf else "a finite "
        raise ValueError(f"{name}: expected {finite}value {lower}{upper}, got {value!r}")


def _check_int(name: str, value: Any, low: int | None) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if low is not None and value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")

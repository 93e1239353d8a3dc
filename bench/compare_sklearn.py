"""csoftmax's SoftmaxRegressionClassifier(solver="lbfgs") against scikit-learn's
LogisticRegression(solver="lbfgs") on Fashion-MNIST, side by side in one run.

Both minimise the same objective (mean cross-entropy + ||W||^2 / (2 C n),
intercept unpenalised) with scipy's L-BFGS-B and the same stopping rules, so
the comparison is of the cost of one loss-and-gradient evaluation: csoftmax's
fused kernel and two BLAS GEMMs against scikit-learn's loss module.

    python bench/compare_sklearn.py                       # 60k train, 10k test, float32
    python bench/compare_sklearn.py --n-train 10000 --repeats 5 --C 0.1
    python bench/compare_sklearn.py --json > result.json

The fits alternate (csoftmax first on even repeats, scikit-learn first on
odd ones) so that drift on a shared machine hits both alike.  Reported per
estimator: the median fit time and its spread ((max - min) / median), the
L-BFGS iterations, whether it met ``tol`` before ``max_iter``, the test
accuracy, and the training objective of the result evaluated in float64
NumPy (the same formula for both, so a faster fit cannot hide a worse optimum).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn import __version__ as sklearn_version
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import csoftmax as cs
from csoftmax.sklearn import SoftmaxRegressionClassifier

NAMES = {
    "csoftmax": "csoftmax SoftmaxRegressionClassifier",
    "sklearn": "sklearn LogisticRegression",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=60000, help="training rows (default: all 60000)")
    p.add_argument("--n-test", type=int, default=10000, help="test rows (default: all 10000)")
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 strength (default: 1.0)")
    p.add_argument("--max-iter", type=int, default=100, help="L-BFGS iterations (default: 100)")
    p.add_argument("--tol", type=float, default=1e-4, help="gradient tolerance (default: 1e-4)")
    p.add_argument("--repeats", type=int, default=3, help="fits of each (default: 3)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument(
        "--threads", type=int, default=None, help="csoftmax and BLAS threads (default: all cores)"
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = p.parse_args(argv)
    for name in ("n_train", "n_test", "max_iter", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: must be at least 1")
    if not args.C > 0:
        p.error("--C: must be > 0")
    if args.threads is not None and args.threads < 1:
        p.error("--threads: must be at least 1")
    return args


def make_estimator(kind: str, args: argparse.Namespace):
    common = dict(C=args.C, max_iter=args.max_iter, tol=args.tol)
    if kind == "csoftmax":
        return SoftmaxRegressionClassifier(solver="lbfgs", **common)
    return LogisticRegression(solver="lbfgs", **common)


def objective(est, X: np.ndarray, y: np.ndarray, C: float, block: int = 8192) -> float:
    """Mean cross-entropy + ||W||^2 / (2 C n) of a fitted model, in float64,
    from its predicted log-probabilities' formula (not from either library)."""
    W = np.asarray(est.coef_, np.float64).T
    b = np.asarray(est.intercept_, np.float64)
    total = 0.0
    for start in range(0, X.shape[0], block):
        z = X[start : start + block].astype(np.float64) @ W + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        total -= logp[np.arange(z.shape[0]), y[start : start + block]].sum()
    return total / X.shape[0] + float((W**2).sum()) / (2 * C * X.shape[0])


def fit_once(kind: str, args, X, y, X_test, y_test) -> dict:
    est = make_estimator(kind, args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {
        "seconds": seconds,
        "n_iter": int(np.ravel(est.n_iter_)[0]),
        "converged": converged,
        "test_accuracy": float(est.score(X_test, y_test)),
        "train_objective": objective(est, X, y, args.C),
        "estimator": est,
    }


def summarise(runs: list[dict]) -> dict:
    times = [r["seconds"] for r in runs]
    median = statistics.median(times)
    return {
        "median_seconds": median,
        "spread": (max(times) - min(times)) / median if median > 0 else float("nan"),
        "seconds": times,
        "n_iter": [r["n_iter"] for r in runs],
        "converged": [r["converged"] for r in runs],
        "test_accuracy": runs[-1]["test_accuracy"],
        "train_objective": runs[-1]["train_objective"],
    }


def run(args: argparse.Namespace) -> dict:
    (X_train, y_train), (X_test, y_test) = cs.datasets.load_fashion_mnist()
    dtype = np.dtype(args.dtype)
    X = np.ascontiguousarray(X_train[: args.n_train], dtype=dtype)
    y = y_train[: args.n_train]
    X_test = np.ascontiguousarray(X_test[: args.n_test], dtype=dtype)
    y_test = y_test[: args.n_test]
    threads = args.threads or len(os.sched_getaffinity(0))
    before = cs.get_num_threads()
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"csoftmax": [], "sklearn": []}
    try:
        cs.set_num_threads(threads)
        with threadpool_limits(limits=threads):  # every BLAS: NumPy's and SciPy's
            for r in range(args.repeats):
                order = ("csoftmax", "sklearn") if r % 2 == 0 else ("sklearn", "csoftmax")
                for kind in order:
                    runs[kind].append(fit_once(kind, args, X, y, X_test, y_test))
                    if not args.json:
                        last = runs[kind][-1]
                        print(
                            f"  repeat {r + 1}/{args.repeats} {kind:<8} {last['seconds']:7.2f} s"
                            f"  {last['n_iter']:4d} iterations",
                            file=sys.stderr,
                        )
    finally:
        cs.set_num_threads(before)
    ours, theirs = runs["csoftmax"][-1]["estimator"], runs["sklearn"][-1]["estimator"]
    coef_ours = np.asarray(ours.coef_, np.float64)
    coef_theirs = np.asarray(theirs.coef_, np.float64)
    agreement = {
        "max_abs_coef_difference": float(np.abs(coef_ours - coef_theirs).max()),
        "max_abs_coef": float(np.abs(coef_theirs).max()),
        "test_predictions_agree": float(np.mean(ours.predict(X_test) == theirs.predict(X_test))),
    }
    return {
        "setup": {
            "data": "Fashion-MNIST, pixels in [0, 1]",
            "n_train": int(X.shape[0]),
            "n_test": int(X_test.shape[0]),
            "dtype": dtype.name,
            "C": args.C,
            "max_iter": args.max_iter,
            "tol": args.tol,
            "repeats": args.repeats,
            "threads": threads,
            "csoftmax": cs.__version__,
            "sklearn": sklearn_version,
            "simd": cs.show_config(mode="dicts")["simd"],
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            # The 1-minute load average before the first fit and after the last
            # (the fits' own load included): well above the thread count, the
            # fits shared the cores with other work and the times are noisy.
            "load_average": [load_before, os.getloadavg()[0]],
        },
        "results": {kind: summarise(rs) for kind, rs in runs.items()},
        "agreement": agreement,
    }


def table(report: dict) -> str:
    s, res, agree = report["setup"], report["results"], report["agreement"]
    lines = [
        f"Fashion-MNIST: {s['n_train']} train / {s['n_test']} test rows, {s['dtype']}, "
        f"C={s['C']:g}, max_iter={s['max_iter']}, tol={s['tol']:g}, {s['threads']} threads, "
        f"{s['repeats']} repeats alternating (csoftmax {s['csoftmax']}, scikit-learn "
        f"{s['sklearn']}, SIMD {s['simd']}, load average before/after "
        f"{' / '.join(f'{v:.2f}' for v in s['load_average'])})",
        "",
        f"| {'estimator':<36} | fit time (median) | spread | iterations | met tol | "
        f"test accuracy | train objective |",
        f"|{'-' * 38}|------------------:|-------:|-----------:|:-------:|--------------:|"
        f"----------------:|",
    ]
    for kind, r in res.items():
        iters = sorted(set(r["n_iter"]))
        it = str(iters[0]) if len(iters) == 1 else f"{iters[0]}-{iters[-1]}"
        met = "yes" if all(r["converged"]) else ("no" if not any(r["converged"]) else "some")
        lines.append(
            f"| {NAMES[kind]:<36} | {r['median_seconds']:15.2f} s | {r['spread'] * 100:5.0f}% "
            f"| {it:>10} | {met:^7} | {r['test_accuracy']:13.4f} | {r['train_objective']:15.6f} |"
        )
    speedup = res["sklearn"]["median_seconds"] / res["csoftmax"]["median_seconds"]
    lines += [
        "",
        f"csoftmax is {speedup:.2f}x as fast; largest coef_ difference "
        f"{agree['max_abs_coef_difference']:.2e} (largest |coef_| {agree['max_abs_coef']:.3f}); "
        f"test predictions agree on {agree['test_predictions_agree'] * 100:.2f}% of rows",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

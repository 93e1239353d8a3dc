"""Slow, obviously-right NumPy references: the oracle of every kernel test.

Everything is computed in float64 (the input is cast to float64 first) with
the literal formulas of API.md, so the non-finite cases come out of IEEE
arithmetic itself:

- softmax / log_softmax use the max-shifted formula ``x - max``: a row
  holding +inf gives nan everywhere (inf - inf), a row of all -inf gives nan
  (-inf - -inf), a nan anywhere gives a nan row;
- logsumexp is -inf for a row of all -inf or a zero-length axis, +inf for a
  row holding +inf and no nan, nan for a row holding nan, and otherwise
  ``m + log(sum(exp(x - m)))``;
- cross_entropy mirrors ``torch.nn.functional.cross_entropy`` for 2-D logits
  and returns the gradient of the loss by the logits alongside.

Floating-point warnings are silenced: overflow to inf and 0 * inf are the
point here, not accidents.
"""

from __future__ import annotations

import numpy as np

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "accuracy"]


def _f64(x) -> np.ndarray:
    return np.array(x, dtype=np.float64, copy=True)


def softmax(x, axis=-1) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along axis, in float64."""
    x = _f64(x)
    if x.shape[axis] == 0:
        return x
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axis, keepdims=True)  # nan if the row holds nan
        e = np.exp(x - m)
        return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1) -> np.ndarray:
    """(x - max) - log(sum(exp(x - max))) along axis, in float64."""
    x = _f64(x)
    if x.shape[axis] == 0:
        return x
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axis, keepdims=True)
        d = x - m
        return d - np.log(np.sum(np.exp(d), axis=axis, keepdims=True))


def logsumexp(x, axis=-1, keepdims=False):
    """log(sum(exp(x))) along axis with API.md's non-finite rules, in float64."""
    x = np.moveaxis(_f64(x), axis, -1)
    with np.errstate(all="ignore"):
        if x.shape[-1] == 0:
            res = np.full(x.shape[:-1], -np.inf)
        else:
            m = np.max(x, axis=-1)
            m_safe = np.where(np.isfinite(m), m, 0.0)
            finite_part = m + np.log(np.sum(np.exp(x - m_safe[..., None]), axis=-1))
            res = np.where(
                np.isnan(x).any(axis=-1),
                np.nan,
                np.where(
                    (x == np.inf).any(axis=-1),
                    np.inf,
                    np.where((x == -np.inf).all(axis=-1), -np.inf, finite_part),
                ),
            )
    res = np.asarray(res, dtype=np.float64)
    if keepdims:
        res = np.expand_dims(res, axis)
    return res


def cross_entropy(
    logits,
    target,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    label_smoothing=0.0,
):
    """(loss, grad) of torch.nn.functional.cross_entropy for 2-D logits, float64.

    ``loss`` is a float for "mean" and "sum", an (n,) array for "none";
    ``grad`` is d loss / d logits, of the summed loss for "none".  Written
    with plain row loops, in PyTorch's own order of operations (so that its
    nan/inf cases come out alike): this is an oracle, not a kernel.

    logp = log_softmax(logits), p = softmax(logits), e = label_smoothing.

    Class-index targets y: per row nll = -w[y] logp[y] and, only when e > 0,
    smooth = -sum_c w_c logp_c; ignored rows count for nothing.  The loss is
    (1 - e) * NLL + (e / q) * SMOOTH where NLL and SMOOTH are the row values
    ("none"), their sums ("sum") or their sums divided by D = sum of w[y] over
    the counted rows ("mean"; 0/0 is nan when every row is ignored).  The
    gradient of a counted row is g = u - p * sum(u) with u = d loss / d logp:
    u = -(e/q)/D * w, and u[y] -= (1 - e)/D * w[y] (D = 1 but for "mean").
    With D > 0 that is (p * sum(c) - c) / D for the row's target distribution
    c_k = (e/q) w_k + (1 - e) w_y [k == y].

    Probability targets t: t' = (1 - e) t + e/q, row loss -sum_c w_c t'_c
    logp_c, "mean" divides the sum by n; u = -w t' / D with D = n for "mean".
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(reduction)
    o = _f64(logits)
    n, q = o.shape
    w = np.ones(q) if weight is None else _f64(weight)
    e = float(label_smoothing)
    t = np.asarray(target)
    prob = t.ndim == 2
    t = t.astype(np.float64) if prob else t.astype(np.int64)

    with np.errstate(all="ignore"):
        logp = log_softmax(o, axis=1)
        p = softmax(o, axis=1)
        counted = [prob or int(t[i]) != ignore_index for i in range(n)]

        # The reduction's denominator, known before the rows.
        if reduction != "mean":
            denom = np.float64(1.0)
        elif prob:
            denom = np.float64(n)
        else:
            denom = np.float64(0.0)
            for i in range(n):
                if counted[i]:
                    denom += w[int(t[i])]

        grad = np.zeros((n, q))
        if prob:
            rows = np.zeros(n)
            for i in range(n):
                tt = (1.0 - e) * t[i] + e / q
                rows[i] = -np.sum(w * tt * logp[i])
                u = -(w * tt) / denom
                grad[i] = u - p[i] * np.sum(u)
            if reduction == "none":
                return rows, grad
            total = np.float64(0.0)
            for i in range(n):
                total += rows[i]
            return float(total / denom), grad

        nll = np.zeros(n)
        smooth = np.zeros(n)
        a = np.float64(1.0 - e) / denom  # d loss / d NLL-row
        b = np.float64(e / q) / denom  # d loss / d SMOOTH-row
        for i in range(n):
            if not counted[i]:
                continue  # ignored: loss 0, gradient 0
            y = int(t[i])
            nll[i] = -w[y] * logp[i, y]
            u = np.zeros(q)
            if e > 0:
                smooth[i] = -np.sum(w * logp[i])
                u = -b * w
            u[y] -= a * w[y]
            grad[i] = u - p[i] * np.sum(u)

        if reduction == "none":
            rows = (1.0 - e) * nll
            if e > 0:
                rows = rows + (e / q) * smooth
            return rows, grad
        nll_total = np.float64(0.0)
        smooth_total = np.float64(0.0)
        for i in range(n):
            nll_total += nll[i]
            smooth_total += smooth[i]
        loss = (1.0 - e) * (nll_total / denom)
        if e > 0:
            loss = loss + (e / q) * (smooth_total / denom)
        return float(loss), grad


def accuracy(scores, y) -> float:
    """The fraction of rows whose (first) argmax is the label; nan for no rows."""
    s = _f64(scores)
    y = np.asarray(y)
    n = s.shape[0]
    if n == 0:
        return float("nan")
    hits = 0
    for i in range(n):
        if int(np.argmax(s[i])) == int(y[i]):
            hits += 1
    return hits / n


def train_step(x, rows, labels, w, b, scale=1.0):
    """The fused training step of a batch, the slow way, in float64.

    The batch is ``x[rows]`` (all of x's first rows when rows is an int m);
    returns (summed loss, number right, d mean-loss / d w, d mean-loss / d b).
    """
    rows = np.arange(rows) if isinstance(rows, int) else np.asarray(rows)
    xb = _f64(x)[rows] * scale
    y = np.asarray(labels)[rows]
    z = xb @ _f64(w) + _f64(b)
    losses = logsumexp(z, axis=1) - z[np.arange(len(y)), y]
    right = int(np.count_nonzero(np.argmax(z, axis=1) == y))
    g = softmax(z, axis=1)
    g[np.arange(len(y)), y] -= 1
    g /= max(len(y), 1)
    return float(losses.sum()), right, xb.T @ g, g.sum(axis=0)

"""How many samples look noisy, from the per-sample losses alone: a two-component loss mixture.

Small-loss idea (Arpit et al. 2017, "A Closer Look at Memorization in Deep Networks"; Han et al.
2018, "Co-teaching"): before it memorizes, a network fits clean samples first, so their losses are
low while mislabelled ones stay high, and the loss distribution is bimodal. Arazo et al. 2019
("Unsupervised Label Noise Modeling and Loss Correction", ICML 2019, section 3) fit a two-component
mixture to the per-sample losses and read the high-loss component as the noisy one; they used a
beta mixture. Li et al. 2020 ("DivideMix", ICLR 2020, section 3.1) found that the beta mixture
"tends to produce undesirable flat distributions" and fit a **Gaussian** mixture instead, with EM
for 10 rounds on min-max normalised losses. :func:`loss_mixture` implements both, in numpy only:

* ``family="gaussian"`` (default, DivideMix): ``x = (l - min l) / (max l - min l)``;
  ``p(x) = sum_k w_k N(x; mu_k, s_k^2)``; EM from ``mu = (q25, q75)`` of ``x``, ``s_k^2 = var(x)``,
  ``w = (1/2, 1/2)``; M-step ``s_k^2`` gets ``+ 5e-4`` (DivideMix's ``reg_covar``).
* ``family="beta"`` (Arazo et al., their ``BetaMixture1D``): ``x = (l - q05) / (q95 - q05)`` clipped to
  ``[1e-4, 1 - 1e-4]``, fitted on the losses inside ``[q05, q95]``;
  ``Beta(x; a, b) = x^(a-1) (1-x)^(b-1) / B(a, b)``; EM from ``(a, b) = (1, 2), (2, 1)``; M-step by
  weighted moments: ``a = m (m (1 - m) / v - 1)``, ``b = a (1 - m) / m``.

Both: ``max_iter`` EM rounds (default 10, as both papers). The noisy component is the one with the
larger mean; :meth:`LossMixture.noisy_posterior` is its responsibility made non-decreasing in the
loss (a higher loss is never less likely noisy): above the loss where it peaks it is held at the
peak (as Arazo's code does), below the loss where it is lowest it is held at that minimum (a wide
noisy component would otherwise claim the smallest losses). Read-outs over *all*
losses: ``noisy_fraction = mean_i P_i`` (the estimated share of unfitted, likely noisy samples) and
``noisy_mode_loss = sum_i P_i l_i / sum_i P_i`` (nats: where the unfitted samples' losses sit). The
share tracks the true noise rate while the network fits clean samples and has not yet memorized the
noise; both fall once memorization sets in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FAMILIES", "LossMixture", "loss_mixture", "estimated_noisy_fraction"]

_EPS = 1e-4
_REG_COVAR = 5e-4
#: the mixture families :func:`loss_mixture` fits
FAMILIES: tuple[str, ...] = ("gaussian", "beta")


@dataclass(frozen=True)
class LossMixture:
    """A fitted two-component loss mixture (``loss_mixture``'s result); components ``(clean, noisy)``.

    Attributes:
        family: ``"gaussian"`` or ``"beta"``.
        lo, hi: the losses mapped to 0 and 1 (nats): min / max (gaussian), q05 / q95 (beta).
        weights: mixture weights; params: ``(mu, s^2)`` (gaussian) or ``(a, b)`` (beta) per component,
            on the scaled losses.
        noisy_fraction: mean noisy posterior over every input loss, in [0, 1].
        noisy_mode_loss: ``sum_i P_i l_i / sum_i P_i`` (nats).
        n: number of losses (NaN dropped).
    """

    family: str
    lo: float
    hi: float
    weights: tuple[float, float]
    params: tuple[tuple[float, float], tuple[float, float]]
    noisy_fraction: float
    noisy_mode_loss: float
    n: int

    def scale(self, losses) -> np.ndarray:
        """Losses mapped by ``(l - lo) / (hi - lo)`` (beta: clipped to ``[1e-4, 1 - 1e-4]``)."""
        x = (np.asarray(losses, np.float64) - self.lo) / (self.hi - self.lo)
        return np.clip(x, _EPS, 1.0 - _EPS) if self.family == "beta" else x

    def noisy_posterior(self, losses) -> np.ndarray:
        """``P(noisy | loss)`` for each loss, non-decreasing in the loss, in [0, 1]."""
        x = self.scale(losses)
        r = _responsibilities(self.family, x, self.weights, self.params)[1]
        order = np.argsort(x, kind="stable")
        rs = r[order]
        if len(rs):
            top = int(np.argmax(rs))
            rs[top:] = rs[top]                      # above the likeliest-noisy loss: at least that likely
            low = int(np.argmin(rs[:top + 1]))
            rs[:low] = rs[low]                      # below the likeliest-clean loss: no more likely noisy
            rs = np.maximum.accumulate(rs)
        out = np.empty_like(r)
        out[order] = rs
        return out


def _log_pdf(family: str, x: np.ndarray, p: tuple[float, float]) -> np.ndarray:
    if family == "gaussian":
        mu, var = p
        return -0.5 * (x - mu) ** 2 / var - 0.5 * math.log(2.0 * math.pi * var)
    a, b = p
    return (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)


def _responsibilities(family: str, x: np.ndarray, w, params) -> np.ndarray:
    logp = np.stack([math.log(max(w[k], 1e-300)) + _log_pdf(family, x, params[k]) for k in range(2)])
    logp -= logp.max(axis=0)
    p = np.exp(logp)
    return p / p.sum(axis=0)


def _m_step(family: str, x: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    total = max(float(r.sum()), 1e-12)  # einsum, not np.dot: BLAS threads busy-wait on a loaded machine
    m = float(np.einsum("i,i->", r, x) / total)
    d = x - m
    v = float(np.einsum("i,i,i->", r, d, d) / total)
    if family == "gaussian":
        return m, v + _REG_COVAR
    m = min(max(m, _EPS), 1.0 - _EPS)
    common = max(m * (1.0 - m) / max(v, 1e-8) - 1.0, 1e-3)  # v >= m(1-m) has no beta: the flattest one
    return m * common, (1.0 - m) * common


def _mean(family: str, p: tuple[float, float]) -> float:
    return p[0] if family == "gaussian" else p[0] / (p[0] + p[1])


def loss_mixture(losses, *, family: str = "gaussian", max_iter: int = 10,
                 max_fit: int | None = None) -> LossMixture | None:
    """Fit a two-component mixture to per-sample losses (module docstring for the formulas).

    Args:
        losses: per-sample losses (nats, >= 0), one per sample; NaN ignored.
        family: ``"gaussian"`` (DivideMix, default) or ``"beta"`` (Arazo et al. 2019).
        max_iter: EM rounds (both papers use 10).
        max_fit: fit EM on at most this many losses (every k-th in the given order; the read-outs
            still average over all of them). None: all. A 1-D two-component fit is settled long before
            10^4 points; the live monitor uses 20 000 so a GREAT step's 250 k losses cost no more.

    Returns:
        The fit, or None when it is undefined: fewer than 10 losses, or no spread (the losses mapped
        to 0 and 1 are equal).

    >>> rng = np.random.default_rng(0)
    >>> fit = loss_mixture(np.r_[rng.gamma(1.0, 0.1, 700), rng.normal(2.5, 0.5, 300).clip(0)])
    >>> round(fit.noisy_fraction, 2), round(fit.noisy_mode_loss, 1)
    (0.3, 2.4)
    """
    if family not in FAMILIES:
        raise ValueError(f"Invalid value for argument `family`. Received: family={family!r}. Expected one of "
                         f"{list(FAMILIES)}.")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int; received {max_iter!r}")
    v = np.asarray(losses, np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size and v.min() < 0:
        raise ValueError(f"losses must be >= 0 (nats); received a minimum of {v.min()!r}")
    if v.size < 10:
        return None
    if max_fit is not None and (not isinstance(max_fit, int) or max_fit < 10):
        raise ValueError(f"max_fit must be None or an int >= 10; received {max_fit!r}")
    sample = v if max_fit is None or v.size <= max_fit else v[:: -(-v.size // max_fit)]
    if family == "gaussian":
        lo, hi = float(v.min()), float(v.max())
    else:
        lo, hi = (float(q) for q in np.percentile(v, [5, 95]))
    if not hi > lo:
        return None
    x = (sample - lo) / (hi - lo)
    if family == "gaussian":
        params = [(float(q), float(x.var())) for q in np.quantile(x, [0.25, 0.75])]
    else:
        x = np.clip(x[(sample >= lo) & (sample <= hi)], _EPS, 1.0 - _EPS)
        params = [(1.0, 2.0), (2.0, 1.0)]
    w = [0.5, 0.5]
    for _ in range(max_iter):
        r = _responsibilities(family, x, w, params)
        params = [_m_step(family, x, r[k]) for k in range(2)]
        w = list(r.sum(axis=1) / r.sum())
    if _mean(family, params[0]) > _mean(family, params[1]):  # component 1 is the high-loss (noisy) one
        w, params = w[::-1], params[::-1]
    fit = LossMixture(family, lo, hi, (float(w[0]), float(w[1])), (tuple(map(float, params[0])),
                      tuple(map(float, params[1]))), float("nan"), float("nan"), int(v.size))
    post = fit.noisy_posterior(v)
    mode_loss = float(np.einsum("i,i->", post, v) / post.sum()) if post.sum() > 0 else float("nan")
    return LossMixture(fit.family, lo, hi, fit.weights, fit.params, float(post.mean()), mode_loss, int(v.size))


def estimated_noisy_fraction(losses, *, family: str = "gaussian", max_iter: int = 10) -> float:
    """:attr:`LossMixture.noisy_fraction` of :func:`loss_mixture`, NaN when the fit is undefined.

    >>> estimated_noisy_fraction([1.0] * 20)
    nan
    """
    fit = loss_mixture(losses, family=family, max_iter=max_iter)
    return float("nan") if fit is None else fit.noisy_fraction

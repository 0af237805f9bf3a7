"""Calibration observers (§3.6): collect statistics with ``update(x)``, then ``qparams(spec)``.

* :class:`MinMaxObserver` - running min / max, per tensor, per axis or per block;
* :class:`MovingAverageMinMaxObserver` - exponential moving average of batch min / max;
* :class:`PercentileObserver` - clip at a percentile of the histogram;
* :class:`MSEObserver` - clip range minimising the modelled quantization MSE over the histogram;
* :class:`EntropyObserver` - TensorRT KL-divergence calibration of the |x| histogram.

The histogram observers are per tensor; their histogram covers a symmetric range [-R, R]
that doubles (merging bin pairs exactly) when larger values arrive.
:func:`dynamic_qparams` is min-max on one tensor, as used by dynamic quantization.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hwsim.errors import ConfigError, HwsimError
from hwsim.quant.granularity import Granularity, PerAxis, PerBlock, PerTensor, reduce_blocks
from hwsim.quant.qparams import QParams, choose_qparams, qparams_for_range
from hwsim.quant.spec import QuantSpec

__all__ = [
    "OBSERVERS",
    "EntropyObserver",
    "MSEObserver",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "Observer",
    "PercentileObserver",
    "dynamic_qparams",
    "make_observer",
]


@runtime_checkable
class Observer(Protocol):
    """The observer protocol: feed tensors with update, read QParams for a spec."""

    def update(self, x: npt.ArrayLike) -> None: ...

    def qparams(self, spec: QuantSpec) -> QParams: ...


def _as_finite(x: npt.ArrayLike) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise HwsimError("x must not be empty")
    if not np.all(np.isfinite(a)):
        raise HwsimError("x must be finite (no NaN or Inf) to be observed")
    return a


def _check_granularity(g: Granularity) -> Granularity:
    if not isinstance(g, (PerTensor, PerAxis, PerBlock)):
        raise ConfigError(
            "granularity must be PerTensor(), PerAxis(axis) or PerBlock(axis, block_size), "
            f"got {g!r}"
        )
    return g


class _RangeObserver:
    """Shared state of the min-max observers: per-block lo / hi and the tensor rank."""

    def __init__(self, granularity: Granularity) -> None:
        self.granularity = _check_granularity(granularity)
        self.min_val: np.ndarray | None = None
        self.max_val: np.ndarray | None = None
        self._ndim: int | None = None

    def _batch_range(self, x: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        a = _as_finite(x)
        lo = reduce_blocks(a, self.granularity, np.min)
        hi = reduce_blocks(a, self.granularity, np.max)
        if self.min_val is not None and lo.shape != self.min_val.shape:
            raise HwsimError(
                f"x gives parameter shape {lo.shape} for {self.granularity!r}, but earlier "
                f"updates gave {self.min_val.shape}"
            )
        self._ndim = a.ndim
        return lo, hi

    def qparams(self, spec: QuantSpec) -> QParams:
        """QParams for the observed range (§3.4); spec.granularity must equal the observer's."""
        if self.min_val is None or self.max_val is None:
            raise HwsimError(f"{type(self).__name__} has observed no data; call update(x) first")
        if spec.granularity != self.granularity:
            raise ConfigError(
                f"spec.granularity {spec.granularity!r} differs from the observer's "
                f"granularity {self.granularity!r}"
            )
        return choose_qparams(self.min_val, self.max_val, spec, ndim=self._ndim)


class MinMaxObserver(_RangeObserver):
    """Running minimum and maximum of everything observed, per block of ``granularity``."""

    def __init__(self, granularity: Granularity | None = None) -> None:
        super().__init__(PerTensor() if granularity is None else granularity)

    def update(self, x: npt.ArrayLike) -> None:
        """Widen the running range with the range of ``x`` (finite values only)."""
        lo, hi = self._batch_range(x)
        if self.min_val is None or self.max_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = np.minimum(self.min_val, lo)
            self.max_val = np.maximum(self.max_val, hi)


class MovingAverageMinMaxObserver(_RangeObserver):
    """Exponential moving average of batch min / max: ``m <- m + momentum * (batch - m)``.

    The first update sets the range to the first batch's; ``momentum`` is in (0, 1].
    """

    def __init__(self, momentum: float = 0.01, granularity: Granularity | None = None) -> None:
        super().__init__(PerTensor() if granularity is None else granularity)
        if not (isinstance(momentum, (int, float)) and 0.0 < float(momentum) <= 1.0):
            raise ConfigError(f"momentum must be in (0, 1], got {momentum!r}")
        self.momentum = float(momentum)

    def update(self, x: npt.ArrayLike) -> None:
        """Move the running range towards the range of ``x``."""
        lo, hi = self._batch_range(x)
        if self.min_val is None or self.max_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = self.min_val + self.momentum * (lo - self.min_val)
            self.max_val = self.max_val + self.momentum * (hi - self.max_val)


class _HistogramObserver:
    """Histogram of all observed values over [-R, R] with ``bins`` equal bins (per tensor).

    R starts at the first nonzero max |x| and doubles as needed; doubling merges bin pairs
    2j, 2j+1 into bin bins/4 + j, so no count moves across a value boundary. ``bins`` must
    be a multiple of 4 and >= 16.
    """

    def __init__(self, bins: int = 4096) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 16 or bins % 4:
            raise ConfigError(f"bins must be an int >= 16 and a multiple of 4, got {bins!r}")
        self.bins = bins
        self.hist = np.zeros(bins, dtype=np.int64)
        self.radius = 0.0
        self.min_val = np.inf
        self.max_val = -np.inf
        self._pending_zeros = 0

    @property
    def count(self) -> int:
        """Number of values observed."""
        return int(self.hist.sum()) + self._pending_zeros

    def _double(self) -> None:
        b = self.bins
        merged = self.hist[0::2] + self.hist[1::2]
        new = np.zeros(b, dtype=np.int64)
        new[b // 4 : b // 4 + b // 2] = merged
        self.hist = new
        self.radius *= 2.0

    def update(self, x: npt.ArrayLike) -> None:
        """Add the finite values of ``x`` to the histogram."""
        a = _as_finite(x).reshape(-1)
        self.min_val = min(self.min_val, float(a.min()))
        self.max_val = max(self.max_val, float(a.max()))
        amax = float(np.max(np.abs(a)))
        if amax == 0.0 and self.radius == 0.0:
            self._pending_zeros += a.size
            return
        if self.radius == 0.0:
            self.radius = amax
            self.hist[self.bins // 2] += self._pending_zeros
            self._pending_zeros = 0
        while amax > self.radius:
            self._double()
        width = 2.0 * self.radius / self.bins
        idx = np.floor((a + self.radius) / width).astype(np.int64)
        np.clip(idx, 0, self.bins - 1, out=idx)
        self.hist += np.bincount(idx, minlength=self.bins)

    def _edges(self) -> np.ndarray:
        return np.linspace(-self.radius, self.radius, self.bins + 1)

    def _folded(self) -> np.ndarray:
        """Histogram of |x|: bin k covers [k w, (k+1) w], w = 2R / bins."""
        h = self.bins // 2
        return self.hist[h:] + self.hist[:h][::-1]

    def _check(self, spec: QuantSpec) -> None:
        if not isinstance(spec, QuantSpec):
            raise ConfigError(f"spec must be a QuantSpec, got {type(spec).__name__}")
        if not isinstance(spec.granularity, PerTensor):
            raise ConfigError(
                f"{type(self).__name__} supports only PerTensor granularity, got "
                f"{spec.granularity!r}"
            )
        if self.count == 0:
            raise HwsimError(f"{type(self).__name__} has observed no data; call update(x) first")

    def _range_qparams(self, lo: float, hi: float, spec: QuantSpec) -> QParams:
        lo = max(lo, self.min_val)
        hi = min(hi, self.max_val)
        return choose_qparams(min(lo, hi), max(lo, hi), spec)


def _quantile(hist: np.ndarray, edges: np.ndarray, frac: float) -> float:
    """Value below which ``frac`` of the histogram mass lies (linear inside a bin)."""
    cum = np.cumsum(hist)
    target = frac * cum[-1]
    k = int(np.searchsorted(cum, target, side="left"))
    k = min(k, len(hist) - 1)
    before = cum[k - 1] if k > 0 else 0
    inside = hist[k]
    t = (target - before) / inside if inside > 0 else 1.0
    return float(edges[k] + t * (edges[k + 1] - edges[k]))


class PercentileObserver(_HistogramObserver):
    """Clip the range at a percentile of the observed values (§3.6).

    Symmetric specs and fp8: amax = the ``percentile``-th percentile of |x|. Affine specs:
    [the (100 - p)-th, the p-th] percentile of x. Each bound is capped by the observed min/max.
    """

    def __init__(self, percentile: float = 99.99, bins: int = 4096) -> None:
        super().__init__(bins)
        if not (isinstance(percentile, (int, float)) and 50.0 < float(percentile) <= 100.0):
            raise ConfigError(f"percentile must be in (50, 100], got {percentile!r}")
        self.percentile = float(percentile)

    def qparams(self, spec: QuantSpec) -> QParams:
        self._check(spec)
        frac = self.percentile / 100.0
        if self.radius == 0.0:
            return choose_qparams(0.0, 0.0, spec)
        if spec.is_fp8 or spec.symmetric:
            folded = self._folded()
            fedges = np.linspace(0.0, self.radius, self.bins // 2 + 1)
            amax = _quantile(folded, fedges, frac)
            return self._range_qparams(-amax, amax, spec)
        edges = self._edges()
        return self._range_qparams(
            _quantile(self.hist, edges, 1.0 - frac), _quantile(self.hist, edges, frac), spec
        )


def _fp8_step(mag: np.ndarray, scale: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Spacing of the fp8 grid (times scale) around real magnitudes ``mag``."""
    f = spec.fp8_format
    v = np.maximum(mag / scale, f.min_normal)
    return scale * np.exp2(np.floor(np.log2(v)) - f.man_bits)


class MSEObserver(_HistogramObserver):
    """Clip range minimising the modelled quantization MSE over the histogram (§3.6).

    Candidates shrink the observed range: [a * lo, a * hi] for a = k / candidates,
    k = 1..candidates (symmetric / fp8: lo = -hi = -max|x|). Each histogram bin is taken as
    uniformly filled; its modelled error is step^2 / 12 for the part inside the representable
    interval [(qmin' - z) s, (qmax - z) s] and the exact squared clipping distance integrated
    over the parts outside. The first candidate of minimum error wins.
    """

    def __init__(self, bins: int = 4096, candidates: int = 200) -> None:
        super().__init__(bins)
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ConfigError(f"candidates must be an int >= 1, got {candidates!r}")
        self.candidates = candidates

    def _errors(self, lo: np.ndarray, hi: np.ndarray, spec: QuantSpec) -> np.ndarray:
        scale, zp = qparams_for_range(lo, hi, spec)
        s = scale.astype(np.float64)[:, None]
        if spec.is_fp8:
            top = spec.fp8_format.max_finite * s
            bottom = -top
        else:
            top = (spec.qmax - zp[:, None]) * s
            bottom = (spec.qmin - zp[:, None]) * s
        edges = self._edges()
        u, v = edges[:-1][None, :], edges[1:][None, :]
        n = self.hist[None, :].astype(np.float64)
        width = v - u
        inside = np.clip(np.minimum(v, top) - np.maximum(u, bottom), 0.0, None) / width
        if spec.is_fp8:
            step = _fp8_step(np.abs(0.5 * (u + v)), s, spec)
        else:
            step = s
        err = n * inside * step**2 / 12.0
        above_from = np.maximum(u, top)
        err += np.where(v > top, n * ((v - top) ** 3 - (above_from - top) ** 3) / (3 * width), 0.0)
        below_to = np.minimum(v, bottom)
        err += np.where(
            u < bottom, n * ((bottom - u) ** 3 - (bottom - below_to) ** 3) / (3 * width), 0.0
        )
        return err.sum(axis=1)

    def qparams(self, spec: QuantSpec) -> QParams:
        self._check(spec)
        if self.radius == 0.0:
            return choose_qparams(0.0, 0.0, spec)
        alpha = np.arange(1, self.candidates + 1, dtype=np.float64) / self.candidates
        if spec.is_fp8 or spec.symmetric:
            amax = max(-self.min_val, self.max_val)
            lo, hi = -alpha * amax, alpha * amax
        else:
            lo, hi = alpha * min(self.min_val, 0.0), alpha * max(self.max_val, 0.0)
        best = int(np.argmin(self._errors(lo, hi, spec)))
        return self._range_qparams(float(lo[best]), float(hi[best]), spec)


def _kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(P || Q) of two unnormalised histograms; inf where P > 0 and Q = 0."""
    p = p / p.sum()
    q = q / q.sum()
    mask = p > 0
    if np.any(q[mask] == 0):
        return float("inf")
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


class EntropyObserver(_HistogramObserver):
    """TensorRT entropy calibration: the |x| threshold minimising KL(P || Q) (§3.6).

    On the |x| histogram (bins/2 bins of width w) with the count of bin 0 (which holds every
    exact zero, e.g. the ReLU spike) replaced by the count of bin 1, as NVIDIA's
    pytorch-quantization ``_compute_amax_entropy`` does: for each i from nq to bins/2: P = the
    first i bins with all counts beyond added to bin i-1; Q = the first i bins merged into nq
    groups (i // nq bins each, the remainder joining the last) and spread evenly over the
    group's nonzero bins. The threshold is T = i* w for the largest i* of minimum KL(P || Q).
    nq = the number of levels that cover [0, T]: (qmax - qmin' + 1) // 2 (128 for int8) when
    the range is two-sided; all qmax - qmin' + 1 (256 for int8) for an affine spec on one-sided
    data (observed min >= 0 or max <= 0, e.g. post-ReLU), whose range [0, T] (or [-T, 0]) gets
    every level (pytorch-quantization's ``unsigned`` case). Integer dtypes only.

    Why bin 0 is replaced: a large spike of exact zeros (mass p0) merged with its group's
    neighbours costs about p0 log(i // nq) in KL(P || Q), which pulls the search towards
    i = nq, i.e. a clip of post-ReLU activations several times tighter than their range.
    """

    def __init__(self, bins: int = 4096) -> None:
        super().__init__(bins)

    def levels(self, spec: QuantSpec) -> int:
        """Quantization levels covering [0, T]: all of them for an affine spec on one-sided
        data (its range [0, T] or [-T, 0] gets every code), else half (one side of [-T, T])."""
        n = spec.qmax - spec.qmin + 1
        one_sided = self.min_val >= 0.0 or self.max_val <= 0.0
        return n if (one_sided and not spec.symmetric) else n // 2

    def threshold(self, levels: int) -> float:
        """The KL-optimal |x| threshold for ``levels`` quantization bins over [0, T]."""
        folded = self._folded().astype(np.float64)
        folded[0] = folded[1]  # neutralise the spike of exact zeros (bin 0 = [0, w))
        nb = folded.size
        width = self.radius / nb
        start = min(levels, nb)
        best_i, best_kl = nb, float("inf")
        for i in range(start, nb + 1):
            p = folded[:i].copy()
            p[i - 1] += folded[i:].sum()
            cand = folded[:i]
            group = i // levels
            ids = np.minimum(np.arange(i) // group, levels - 1)
            sums = np.bincount(ids, weights=cand, minlength=levels)
            nonzero = np.bincount(ids, weights=(cand > 0).astype(np.float64), minlength=levels)
            per = np.divide(sums, nonzero, out=np.zeros(levels), where=nonzero > 0)
            q = np.where(cand > 0, per[ids], 0.0)
            kl = _kl_divergence(p, q) if q.sum() > 0 else float("inf")
            if kl <= best_kl:
                best_i, best_kl = i, kl
        return best_i * width

    def qparams(self, spec: QuantSpec) -> QParams:
        self._check(spec)
        if spec.is_fp8:
            raise ConfigError(
                f"EntropyObserver models uniform integer levels; spec.dtype {spec.dtype} is fp8"
            )
        if self.radius == 0.0:
            return choose_qparams(0.0, 0.0, spec)
        levels = self.levels(spec)
        t = self.threshold(levels)
        return self._range_qparams(-t, t, spec)


def dynamic_qparams(x: npt.ArrayLike, spec: QuantSpec) -> QParams:
    """Min-max QParams of ``x`` itself at ``spec.granularity`` (dynamic quantization, §3.6)."""
    if not isinstance(spec, QuantSpec):
        raise ConfigError(f"spec must be a QuantSpec, got {type(spec).__name__}")
    a = _as_finite(x)
    lo = reduce_blocks(a, spec.granularity, np.min)
    hi = reduce_blocks(a, spec.granularity, np.max)
    return choose_qparams(lo, hi, spec, ndim=a.ndim)


OBSERVERS: dict[str, type] = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageMinMaxObserver,
    "percentile": PercentileObserver,
    "mse": MSEObserver,
    "entropy": EntropyObserver,
}


def make_observer(name: str, **kw: Any) -> Observer:
    """Construct an observer by name: "minmax", "moving_average", "percentile", "mse", "entropy"."""
    try:
        cls = OBSERVERS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"observer name must be one of {sorted(OBSERVERS)}, got {name!r}"
        ) from None
    try:
        return cls(**kw)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for observer {name!r}: {exc}") from None

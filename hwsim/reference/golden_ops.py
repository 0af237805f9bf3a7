"""Integer kernels of the golden model: int64 in, int64 out (specs/arithmetic.md §7, §10).

Every kernel is a pure function of integer arrays (activations NCHW or NK). They implement
§7 (the MAC and the accumulator) and §10 (element-wise ops, pooling) of
``specs/arithmetic.md``; requantization (§8) is :func:`hwsim.arith.requantize`, run on
whole arrays by the Numba kernels of :mod:`hwsim.arith.jit_arrays` (requantization, add,
max pooling; the numpy versions ``*_numpy`` are their references).

Two implementations of the §7 accumulators, proved equal by
``tests/test_golden_fast_vs_literal.py``:

* :func:`conv2d_acc` / :func:`gemm_acc` — what the golden model runs: the exact engine
  :mod:`hwsim.exact` (exact sums on float BLAS, then the step-by-step §7 order only for the
  outputs whose bound ``|bias| + Σ|w||x|`` says they could overflow; §7.4). Same results,
  event counts and error messages as the literal kernels.
* :func:`conv2d_acc_literal` / :func:`gemm_acc_literal` — the executable specification, for
  small shapes: the accumulator of each output is initialised with the folded bias and the
  products are added in ascending reduction index k, k enumerating (input channel within
  the group, kh, kw) in row-major order (§7). Only the reduction over k is vectorised, and
  only where the order cannot change the result: with the ``wrap`` policy (addition modulo
  2^bits is associative) the sum is taken at once and the per-step overflow events are
  counted from the prefix sums (:func:`reduce_products`); ``saturate`` and ``error`` use
  the sequential :func:`hwsim.arith.accumulate`. They materialise every product.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from hwsim import exact
from hwsim.arith import (
    AccumulatorOverflowError,
    RequantParams,
    accumulate,
    jit_arrays,
    requantize,
    wrap_to_bits,
)
from hwsim.errors import HwsimError
from hwsim.exact.matmul import max_abs

#: Left shift applied to both 8-bit inputs of the integer add before rescaling (§10.1).
ADD_LEFT_SHIFT = 20


def add_left_shift(bits: int) -> int:
    """§10.1: L = min(20, 31 − bits) for ``bits``-wide input codes (20 for 8-bit as TFLite,
    15 for 16-bit), so that (q − z)·2^L stays inside int32."""
    return min(ADD_LEFT_SHIFT, 31 - bits)


def _threads() -> dict:
    """How the :mod:`hwsim.arith.jit_arrays` kernels run: rows cut into one range per thread
    of the exact engine's pool (:func:`hwsim.exact.matmul.set_threads`)."""
    return {"threads": exact.threads(), "pmap": exact.parallel_map}


def _bounds(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def reduce_products(bias: np.ndarray, products: np.ndarray, bits: int,
                    policy: str) -> tuple[np.ndarray, int]:
    """§7: acc = bias, then acc ← policy(acc + p_k) for k ascending (last axis of products).

    ``bias`` broadcasts against ``products[..., 0]``. Returns (acc int64, number of
    additions whose exact result left the signed ``bits``-bit range).
    """
    bias = np.broadcast_to(np.asarray(bias, dtype=np.int64), products.shape[:-1])
    if policy != "wrap":
        acc, events = accumulate(bias, products, bits, policy)
        return np.asarray(acc, dtype=np.int64), int(np.sum(events))
    lo, hi = _bounds(bits)
    if bias.size and (int(bias.min()) < lo or int(bias.max()) > hi):
        raise HwsimError(
            f"bias: the folded bias must fit the {bits}-bit accumulator [{lo}, {hi}], got "
            f"range [{int(bias.min())}, {int(bias.max())}]"
        )
    prefix = bias[..., None] + np.cumsum(products, axis=-1, dtype=np.int64)
    before = np.concatenate([bias[..., None], prefix[..., :-1]], axis=-1)
    raw = wrap_to_bits(before, bits, signed=True) + products
    events = int(np.count_nonzero((raw < lo) | (raw > hi)))
    return np.asarray(wrap_to_bits(prefix[..., -1], bits, signed=True), dtype=np.int64), events


def conv_out_size(size: int, k: int, stride: int, pad_begin: int, pad_end: int,
                  dilation: int) -> int:
    """Output length of a convolution or pooling window along one axis (ceil_mode 0)."""
    return (size + pad_begin + pad_end - dilation * (k - 1) - 1) // stride + 1


def pad_nchw(x: np.ndarray, pads: tuple[int, int, int, int], value: int) -> np.ndarray:
    """Pad H and W of an NCHW array; pads = (top, left, bottom, right) as in ONNX."""
    t, left, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=value)


def _windows(xp: np.ndarray, kh: int, kw: int, oh: int, ow: int,
             strides: tuple[int, int], dilations: tuple[int, int]) -> np.ndarray:
    """[N, C, OH, OW, KH, KW] view of the windows of a padded NCHW array (copies)."""
    sh, sw = strides
    dh, dw = dilations
    n, c = xp.shape[:2]
    out = np.empty((n, c, oh, ow, kh, kw), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, :, i, j] = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                                       j * dw: j * dw + sw * (ow - 1) + 1: sw]
    return out


def conv2d_acc_literal(x: np.ndarray, w: np.ndarray, bias: np.ndarray, *, x_zero_point: int,
               strides: tuple[int, int], pads: tuple[int, int, int, int],
               dilations: tuple[int, int], group: int, acc_bits: int,
               policy: str) -> tuple[np.ndarray, int]:
    """§7 accumulators of a 2-D convolution, literally (the executable spec):
    acc[n, m, oh, ow] = bias[m] + Σ_k w·x.

    x: int [N, C, H, W] codes; w: int [M, C/group, KH, KW]; bias: int [M] (already folded:
    it contains −x_zero_point·Σw). Padding positions hold ``x_zero_point``. Returns the
    int64 accumulators [N, M, OH, OW] and the overflow event count.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh = conv_out_size(h, kh, strides[0], pads[0], pads[2], dilations[0])
    ow = conv_out_size(wd, kw, strides[1], pads[1], pads[3], dilations[1])
    xp = pad_nchw(x, pads, x_zero_point)
    win = _windows(xp, kh, kw, oh, ow, strides, dilations)  # [N, C, OH, OW, KH, KW]
    mg = m // group
    acc = np.empty((n, m, oh, ow), dtype=np.int64)
    events = 0
    for b in range(n):
        for g in range(group):
            # patches[oh, ow, k] with k = (c, kh, kw) row-major
            patches = win[b, g * cg:(g + 1) * cg].transpose(1, 2, 0, 3, 4)
            patches = patches.reshape(oh, ow, cg * kh * kw)
            wg = w[g * mg:(g + 1) * mg].reshape(mg, 1, 1, -1)
            products = patches[None] * wg  # [mg, OH, OW, K]: output channel, position, k
            try:
                acc[b, g * mg:(g + 1) * mg], ev = reduce_products(
                    bias[g * mg:(g + 1) * mg, None, None], products, acc_bits, policy)
            except AccumulatorOverflowError as exc:
                raise AccumulatorOverflowError(
                    f"image {b}, output channels from {g * mg} (index = channel offset, "
                    f"oh, ow): {exc}") from exc
            events += ev
    return acc, events


def gemm_acc_literal(x: np.ndarray, w: np.ndarray, bias: np.ndarray, *, acc_bits: int,
             policy: str) -> tuple[np.ndarray, int]:
    """§7 accumulators of y = x·wᵀ, literally (the executable spec):
    acc[n, m] = bias[m] + Σ_k w[m, k]·x[n, k].

    x: int [N, K]; w: int [M, K]; bias: int [M] (folded). Returns (acc int64 [N, M], events).
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    acc = np.empty((x.shape[0], w.shape[0]), dtype=np.int64)
    events = 0
    for b in range(x.shape[0]):
        try:
            acc[b], ev = reduce_products(bias, x[b] * w, acc_bits, policy)  # [M, K]
        except AccumulatorOverflowError as exc:
            raise AccumulatorOverflowError(f"row {b} (index = output feature): {exc}") from exc
        events += ev
    return acc, events


def _check_group_bias(bias: np.ndarray, group: int, bits: int) -> None:
    """The bias check of :func:`reduce_products` / :func:`hwsim.arith.accumulate` (§7.3
    step 1), group by group as the literal kernels meet them."""
    lo, hi = _bounds(bits)
    for part in np.split(bias, group):
        if part.size and (int(part.min()) < lo or int(part.max()) > hi):
            raise HwsimError(
                f"bias: the folded bias must fit the {bits}-bit accumulator [{lo}, {hi}], got "
                f"range [{int(part.min())}, {int(part.max())}]"
            )


def _first_overflow(products_of: Callable[[np.ndarray], np.ndarray], bias: np.ndarray,
                    flat: np.ndarray, bits: int) -> tuple[int, int, int, int, int]:
    """Where the literal §7 loop raises under ``error`` among outputs ``flat`` (flat indices
    in the literal kernel's output block, each known to overflow): the smallest k at which
    an exact prefix sum leaves the range, then the smallest flat index. ``products_of(rows)``
    gives the products ``[len(rows), K]`` of outputs ``flat[rows]``, ``bias`` their biases.
    Returns (flat index, k, acc before, product, sum)."""
    lo, hi = _bounds(bits)
    best: tuple[int, int, int, int, int] | None = None
    step = 4096
    for r0 in range(0, flat.size, step):
        rows = np.arange(r0, min(r0 + step, flat.size))
        prod = products_of(rows)
        prefix = bias[rows, None] + np.cumsum(prod, axis=1, dtype=np.int64)
        out = (prefix < lo) | (prefix > hi)
        ks = np.argmax(out, axis=1)
        for i in np.lexsort((flat[rows], ks)):
            k = int(ks[i])
            cand = (k, int(flat[rows[i]]))
            if best is None or cand < (best[1], best[0]):
                before = int(prefix[i, k - 1]) if k else int(bias[rows[i]])
                best = (cand[1], k, before, int(prod[i, k]), int(prefix[i, k]))
            break
    assert best is not None
    return best


def _overflow_message(flat: int, shape: tuple[int, ...], k: int, before: int, p: int,
                      s: int, bits: int) -> str:
    lo, hi = _bounds(bits)
    idx = tuple(int(i) for i in np.unravel_index(flat, shape))
    return (f"accumulator overflow at output index {idx}, k = {k}: {before} + {p} = {s} is "
            f"outside the {bits}-bit range [{lo}, {hi}]")


def conv2d_acc(x: np.ndarray, w: np.ndarray, bias: np.ndarray, *, x_zero_point: int,
               strides: tuple[int, int], pads: tuple[int, int, int, int],
               dilations: tuple[int, int], group: int, acc_bits: int,
               policy: str, amax: int | None = None,
               narrow: bool = False) -> tuple[np.ndarray, int]:
    """§7 accumulators of a 2-D convolution: acc[n, m, oh, ow] = bias[m] + Σ_k w·x.

    x: int [N, C, H, W] codes; w: int [M, C/group, KH, KW]; bias: int [M] (already folded:
    it contains −x_zero_point·Σw). Padding positions hold ``x_zero_point``. Returns the
    int64 accumulators [N, M, OH, OW] and the overflow event count — equal to
    :func:`conv2d_acc_literal` (values, counts, errors), computed by the exact engine
    (:func:`hwsim.exact.conv2d_acc`, arithmetic.md §7.4, §7.5). ``amax``: a known bound on
    max|x| and |x_zero_point| (e.g. from the input's format), else computed from ``x``.
    ``narrow``: int32 accumulators where the §7.5 kernels computed them (same values).
    """
    bias = np.asarray(bias, dtype=np.int64)
    w = np.asarray(w)  # the same object for an array (the engine caches packed weights)
    if np.asarray(x).shape[0]:
        _check_group_bias(bias, int(group), acc_bits)
    acc, events, hits = exact.conv2d_acc(
        x, w, bias, x_zero_point=x_zero_point, strides=strides, pads=pads,
        dilations=dilations, group=group, acc_bits=acc_bits, policy=policy, amax=amax,
        narrow=narrow)
    if policy == "error" and hits.index.shape[0]:
        mg = w.shape[0] // group
        idx = hits.index
        key = idx[:, 0] * group + idx[:, 1] // mg
        first = int(key.min())
        b, g = divmod(first, group)
        sel = idx[key == first]
        _, oh, ow = acc.shape[1:]
        flat = ((sel[:, 1] - g * mg) * oh + sel[:, 2]) * ow + sel[:, 3]
        cols, _, _ = exact.conv_columns(np.asarray(x)[b:b + 1], w.shape[2:], strides, pads,
                                        dilations, x_zero_point, np.int64)
        kg = w[0].size
        cols = cols[g * kg:(g + 1) * kg]
        wk = w.reshape(w.shape[0], kg).astype(np.int64)

        def products_of(rows: np.ndarray) -> np.ndarray:
            return wk[sel[rows, 1]] * cols[:, sel[rows, 2] * ow + sel[rows, 3]].T

        f, k, before, p, s = _first_overflow(products_of, bias[sel[:, 1]], flat, acc_bits)
        raise AccumulatorOverflowError(
            f"image {b}, output channels from {g * mg} (index = channel offset, oh, ow): "
            + _overflow_message(f, (mg, oh, ow), k, before, p, s, acc_bits))
    return acc, events


def gemm_acc(x: np.ndarray, w: np.ndarray, bias: np.ndarray, *, acc_bits: int,
             policy: str) -> tuple[np.ndarray, int]:
    """§7 accumulators of y = x·wᵀ: acc[n, m] = bias[m] + Σ_k w[m, k]·x[n, k].

    x: int [N, K]; w: int [M, K]; bias: int [M] (folded). Returns (acc int64 [N, M], events)
    — equal to :func:`gemm_acc_literal`, computed by the exact engine
    (:func:`hwsim.exact.gemm_acc`, arithmetic.md §7.4).
    """
    bias = np.asarray(bias, dtype=np.int64)
    x = np.asarray(x)
    if x.shape[0]:
        _check_group_bias(bias, 1, acc_bits)
    acc, events, hits = exact.gemm_acc(x, w, bias, acc_bits=acc_bits, policy=policy)
    if policy == "error" and hits.index.shape[0]:
        b = int(hits.index[:, 0].min())
        feats = hits.index[hits.index[:, 0] == b, 1]
        xb = x[b].astype(np.int64)
        wk = np.asarray(w, dtype=np.int64)

        def products_of(rows: np.ndarray) -> np.ndarray:
            return wk[feats[rows]] * xb[None, :]

        f, k, before, p, s = _first_overflow(products_of, bias[feats], feats, acc_bits)
        raise AccumulatorOverflowError(
            f"row {b} (index = output feature): "
            + _overflow_message(f, (w.shape[0],), k, before, p, s, acc_bits))
    return acc, events


def round_div_half_away(acc: np.ndarray, count: np.ndarray | int) -> np.ndarray:
    """round-half-away-from-zero(acc / count) for integer acc and count > 0, exactly (§10.2)."""
    acc = np.asarray(acc, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    mag = (2 * np.abs(acc) + count) // (2 * count)
    return np.where(acc < 0, -mag, mag)


def _offset_views(xp: np.ndarray, kernel: tuple[int, int], oh: int, ow: int,
                  strides: tuple[int, int], dilations: tuple[int, int]):
    """The kh·kw strided views ``xp[:, :, i·dh + sh·oh', j·dw + sw·ow']`` of a padded NCHW
    array, one per kernel offset (i, j) in row-major order (no copies)."""
    sh, sw = strides
    dh, dw = dilations
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                     j * dw: j * dw + sw * (ow - 1) + 1: sw]


def avgpool(q: np.ndarray, *, zero_point: int, kernel: tuple[int, int],
            strides: tuple[int, int], pads: tuple[int, int, int, int],
            count_include_pad: bool) -> np.ndarray:
    """§10.2 average pooling sharing the input's qparams:
    out = z + round_half_away(Σ_window (q − z) / count); padding holds z; count is the
    window area (count_include_pad) or the number of non-padding positions. Window sums are
    accumulated one kernel offset at a time over every output position at once."""
    q = np.asarray(q, dtype=np.int64)
    n, c, h, w = q.shape
    kh, kw = kernel
    oh = conv_out_size(h, kh, strides[0], pads[0], pads[2], 1)
    ow = conv_out_size(w, kw, strides[1], pads[1], pads[3], 1)
    centred = exact.pad_input(q - zero_point, pads, 0, np.int64)
    acc = np.zeros((n, c, oh, ow), dtype=np.int64)
    for v in _offset_views(centred, kernel, oh, ow, strides, (1, 1)):
        acc += v
    if count_include_pad:
        count: np.ndarray | int = kh * kw
    else:
        valid = exact.pad_input(np.ones((1, 1, h, w), dtype=np.int64), pads, 0, np.int64)
        count = np.zeros((1, 1, oh, ow), dtype=np.int64)
        for v in _offset_views(valid, kernel, oh, ow, strides, (1, 1)):
            count += v
    return zero_point + round_div_half_away(acc, count)


def global_avgpool(q: np.ndarray, *, zero_point: int) -> np.ndarray:
    """§10.2 global average pooling: out[n, c, 0, 0] = z + round_half_away(Σ(q − z) / (H·W))."""
    q = np.asarray(q, dtype=np.int64)
    acc = (q - zero_point).sum(axis=(2, 3), keepdims=True)
    return zero_point + round_div_half_away(acc, q.shape[2] * q.shape[3])


def maxpool(q: np.ndarray, *, kernel: tuple[int, int], strides: tuple[int, int],
            pads: tuple[int, int, int, int], dilations: tuple[int, int],
            qmin: int, out_dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """Max pooling on codes (monotone, so it commutes with dequantization); padding = qmin.
    Integer codes run the Numba kernel :func:`hwsim.arith.jit_arrays.maxpool_array` (the
    (n, c) planes cut into one range per thread), anything else :func:`maxpool_numpy`.
    int64 codes, or ``out_dtype`` (a compact code dtype every code fits)."""
    q = np.asarray(q)
    oh = conv_out_size(q.shape[2], kernel[0], strides[0], pads[0], pads[2], dilations[0])
    ow = conv_out_size(q.shape[3], kernel[1], strides[1], pads[1], pads[3], dilations[1])
    out = jit_arrays.maxpool_array(q, kernel=kernel, strides=strides, pads=pads,
                                   dilations=dilations, out_hw=(oh, ow), qmin=qmin,
                                   out_dtype=out_dtype, **_threads())
    if out is not None:
        return out
    return _as(maxpool_numpy(q, kernel=kernel, strides=strides, pads=pads,
                             dilations=dilations, qmin=qmin), out_dtype)


def maxpool_numpy(q: np.ndarray, *, kernel: tuple[int, int], strides: tuple[int, int],
                  pads: tuple[int, int, int, int], dilations: tuple[int, int],
                  qmin: int) -> np.ndarray:
    """:func:`maxpool` in numpy (the reference of the kernel): a running maximum over the
    kernel offsets, every output position at once."""
    q = np.asarray(q)
    n, c = q.shape[:2]
    oh = conv_out_size(q.shape[2], kernel[0], strides[0], pads[0], pads[2], dilations[0])
    ow = conv_out_size(q.shape[3], kernel[1], strides[1], pads[1], pads[3], dilations[1])
    # Codes of ≤ 16-bit formats (and qmin) fit int32: the running maximum is exact there.
    small = q.size == 0 or (max_abs(q) < 1 << 31 and abs(int(qmin)) < 1 << 31)
    dtype = np.int32 if small else np.int64
    out = np.empty((n, c, oh, ow), dtype=np.int64)

    def part(ch: slice) -> None:  # channels are independent: parts in parallel threads
        best = None
        for v in _offset_views(exact.pad_input(q[:, ch], pads, qmin, dtype), kernel, oh, ow,
                               strides, dilations):
            if best is None:
                best = v.copy()
            else:
                np.maximum(best, v, out=best)
        out[:, ch] = best

    edges = np.linspace(0, c, min(c, exact.threads()) + 1).astype(int)
    exact.parallel_map(part, [slice(int(edges[i]), int(edges[i + 1]))
                              for i in range(len(edges) - 1)])
    return out


def add(qa: np.ndarray, qb: np.ndarray, *, za: int, zb: int, pa: RequantParams,
        pb: RequantParams, po: RequantParams, left_shift: int = ADD_LEFT_SHIFT,
        out_dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """§10.1 integer add: each input, centred and shifted left by ``left_shift``, is
    rescaled to the common intermediate scale by its own requant block (``pa``, ``pb``:
    zero point 0, 32-bit output), the two are summed, and ``po`` (zero point and clamp of
    the output) requantizes the sum. Same-shape inputs with per-tensor blocks run the fused
    Numba kernel :func:`hwsim.arith.jit_arrays.add_array` (the §8 scalar formula per
    element); broadcasting shapes, and every error, go through :func:`add_numpy`. int64
    codes, or ``out_dtype`` (a compact code dtype every code of ``po``'s format fits)."""
    qa = np.asarray(qa)
    qb = np.asarray(qb)
    if qa.dtype not in jit_arrays.CODE_DTYPES:
        qa = qa.astype(np.int64)
    if qb.dtype not in jit_arrays.CODE_DTYPES:
        qb = qb.astype(np.int64)
    out = jit_arrays.add_array(qa, qb, za=za, zb=zb, pa=pa, pb=pb, po=po,
                               left_shift=left_shift, out_dtype=out_dtype, **_threads())
    if out is not None:
        return out
    return _as(add_numpy(qa, qb, za=za, zb=zb, pa=pa, pb=pb, po=po, left_shift=left_shift),
               out_dtype)


def add_numpy(qa: np.ndarray, qb: np.ndarray, *, za: int, zb: int, pa: RequantParams,
              pb: RequantParams, po: RequantParams,
              left_shift: int = ADD_LEFT_SHIFT) -> np.ndarray:
    """:func:`add` in numpy, three calls of :func:`hwsim.arith.requantize` (the reference
    of the kernel; broadcasting shapes and errors)."""
    qa = np.asarray(qa, dtype=np.int64)
    qb = np.asarray(qb, dtype=np.int64)

    def part(sl: tuple[slice, ...]) -> np.ndarray:
        a = (qa[sl] - za) << left_shift
        b = (qb[sl] - zb) << left_shift
        return requantize(requantize(a, pa) + requantize(b, pb), po)

    if qa.shape != qb.shape:  # broadcasting: one call over everything
        return part((slice(None),))
    return exact.parallel_slices(part, qa.shape, np.int64)  # element-wise: parts in threads


def rescale(q: np.ndarray, *, zero_point: int, params: RequantParams) -> np.ndarray:
    """Requantize codes to another scale: params applied to (q − zero_point) (concat, §10.3).
    Integer codes run :func:`hwsim.arith.jit_arrays.requantize_array` with the offset."""
    q = np.asarray(q, dtype=np.int64)
    out = jit_arrays.requantize_array(q, params, offset=int(zero_point),
                                      **_threads())
    if out is not None:
        return out
    return requantize(q - zero_point, params)


def pad_constant(q: np.ndarray, pads: tuple[int, ...], code: int) -> np.ndarray:
    """Constant padding with ``code`` (the zero point for real 0.0, §10.4); pads in ONNX
    order (begin_0 … begin_{r-1}, end_0 … end_{r-1})."""
    q = np.asarray(q, dtype=np.int64)
    r = q.ndim
    widths = [(pads[i], pads[i + r]) for i in range(r)]
    return np.pad(q, widths, constant_values=code)


def requantize_acc(acc: np.ndarray, params: RequantParams,
                   out_dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """§8 requantization of conv/gemm accumulators (channel axis 1): the Numba kernel
    :func:`hwsim.arith.jit_arrays.requantize_array` (the §8 scalar formula per element,
    rows cut into one range per thread), or :func:`requantize_acc_numpy` where it does not
    apply (which also raises every error). int64 codes, or ``out_dtype`` (a compact code
    dtype every code of the output format fits)."""
    out = jit_arrays.requantize_array(acc, params, 1, out_dtype=out_dtype, **_threads())
    if out is not None:
        return out
    return _as(requantize_acc_numpy(acc, params), out_dtype)



def _as(codes: np.ndarray, out_dtype: npt.DTypeLike | None) -> np.ndarray:
    """``codes`` (int64, from a numpy reference path) in ``out_dtype`` (the caller
    guarantees every code fits it)."""
    return codes if out_dtype is None else codes.astype(out_dtype)


def requantize_acc_numpy(acc: np.ndarray, params: RequantParams) -> np.ndarray:
    """:func:`requantize_acc` with :func:`hwsim.arith.requantize` (its reference; narrower
    integer accumulators are widened to int64 first)."""
    acc = np.asarray(acc)
    if acc.dtype.kind == "i" and acc.dtype.itemsize < 8:
        acc = acc.astype(np.int64)
    return requantize(acc, params, channel_axis=1)

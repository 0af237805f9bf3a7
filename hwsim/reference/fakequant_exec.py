"""The float64 fake-quant reference over an integer graph (specs/compiler.md §5, arithmetic §9).

Every tensor is carried as float64 and re-quantized after every op; the reference never
uses integer kernels. Convolutions and matrix products are computed on *centred* values
(q − z, exactly the real value divided by its scale) with the unfolded bias, by exact
float matrix products over sliding windows — a different algorithm from the golden model's
folded-bias integer accumulators (arithmetic.md §7.4: float32 blocks below 2^24, float64
below 2^53, checked per layer). The rescale after an op multiplies by
the EFFECTIVE scale of the requant block (:func:`hwsim.arith.effective_scale`, §9) and
rounds once, in float64, with the rounding of the mode. Products and sums of ≤ 32-bit
integers by a dyadic scale m·2^-n are exact in float64, so in modes ``dyadic`` and
``custom`` this reference equals the golden model bit for bit; ``tflite`` (two roundings)
and ``float32`` (float32 arithmetic) differ by at most 1 LSB on rare ties, and the
mismatch rate is reported. The accumulator is unbounded here: an overflowing golden
accumulator is a mismatch.

The element-wise stages (centring, bias add + accumulators + rescale, the §10.1 add, max
pooling) run as one-pass Numba kernels (:mod:`hwsim.reference.fakequant_kernels`) doing the
float64 operations of the numpy formulas kept here as their reference (:func:`round_float`,
``_fq_rescale``, ``_fq_add_numpy``, ``_maxpool_numpy``; specs/compiler.md §5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwsim.arith import RequantParams, effective_scale
from hwsim.arith.jit import ROUNDING_CODES
from hwsim.arith.jit_arrays import CODE_DTYPES
from hwsim.compiler.dynamic import (
    dynamic_add,
    dynamic_bias,
    dynamic_concat,
    dynamic_output,
    input_tensorq,
)
from hwsim.compiler.qgraph import QGraph, QNode, TensorQ, quantize_feeds
from hwsim.compiler.requant import fused_act_bounds, pad_code
from hwsim.errors import HwsimError, ModelError
from hwsim.exact import igemm
from hwsim.exact.accumulator import int_weights
from hwsim.exact.im2col import conv_out_size, pad_input
from hwsim.exact.matmul import (
    blocked_matmul,
    max_abs,
    parallel_map,
    parallel_matmul,
    parallel_split,
    plan_product,
    threads,
)
from hwsim.reference import fakequant_kernels as fk
from hwsim.reference.golden_exec import ExecResult, Int64Arrays, compact_dtypes

#: The single float64 rounding that stands for each requant mode's integer datapath.
_MODE_ROUNDING = {"tflite": "half_away", "tflite_single": "half_up", "float32": "half_even",
                  "float64": "half_away"}


def round_float(v: np.ndarray, rounding: str) -> np.ndarray:
    """Round float64 values to integers (float64) with one of the §6 modes, exactly:
    the fraction r = v − floor(v) is exact in float64, and the tie test is r == 0.5."""
    fl = np.floor(v)
    r = v - fl
    if rounding == "half_up":
        inc = r >= 0.5
    elif rounding == "half_away":
        inc = (r > 0.5) | ((r == 0.5) & (v >= 0))
    elif rounding == "half_even":
        inc = (r > 0.5) | ((r == 0.5) & (np.mod(fl, 2.0) == 1.0))
    elif rounding == "floor":
        inc = np.zeros(v.shape, dtype=bool)
    elif rounding == "toward_zero":
        inc = (r != 0) & (v < 0)
    else:
        raise HwsimError(f"rounding: unknown mode {rounding!r}")
    fl += inc
    return fl


def fq_rescale(centred: np.ndarray, params: RequantParams, channel_axis: int = 1) -> np.ndarray:
    """round(centred · effective_scale) + z, output stage of §8.6, in float64; int64 codes.
    Channels on axis 1 of a float64 array: one pass of the Numba kernel
    (:func:`rescale_fused`, the same float64 operations as :func:`_fq_rescale`); otherwise
    the numpy formula, large arrays cut into parts computed in parallel threads."""
    centred = np.asarray(centred)
    if channel_axis == 1:
        fused = rescale_fused(centred, params)
        if fused is not None:
            return fused[0]
        return parallel_split(lambda part: _fq_rescale(part, params, 1), centred, np.int64)
    return _fq_rescale(centred, params, channel_axis)


def _block_vector(params: RequantParams) -> tuple[np.ndarray, np.ndarray] | None:
    """(effective scale, :func:`fakequant_kernels.block_params` vector) of a requant block,
    or None when its rounding is not one the kernels know (the numpy formula then raises)."""
    cfg = params.config
    rounding = _MODE_ROUNDING.get(cfg.mode, cfg.rounding)
    if rounding not in ROUNDING_CODES:
        return None
    return effective_scale(params), fk.block_params(
        params.zero_point, rounding, cfg.output_overflow == "wrap", params.qmin,
        params.out_bits, params.act_min, params.act_max)


def _rows(a: np.ndarray, dtype: type) -> np.ndarray:
    """``a`` as a C-contiguous [N·C, S] array of ``dtype`` (a view when it already is)."""
    return np.ascontiguousarray(a, dtype=dtype).reshape(a.shape[0] * a.shape[1], -1)


def _codes(a: np.ndarray) -> np.ndarray:
    """Integer codes as the kernels read them: int8 / uint8 / int64 as they are (compact
    codes, compiler.md §5), other integer dtypes as int64; C-contiguous."""
    return np.ascontiguousarray(a, dtype=a.dtype if a.dtype in CODE_DTYPES else np.int64)


def _code_array(shape: tuple[int, ...], out_dtype: np.dtype | None) -> np.ndarray:
    """A new array for output codes: int64, or ``out_dtype`` (int8 / uint8, when every code
    of the output format fits it)."""
    return np.empty(shape, dtype=np.int64 if out_dtype is None else out_dtype)


def rescale_fused(src: np.ndarray, params: RequantParams, bias: np.ndarray | None = None,
                  want_acc: bool = False, out_dtype: np.dtype | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One pass over a float64 ``src`` [N, C, ...] with channels on axis 1: ``a = src +
    bias`` (per channel; none when ``bias`` is None), then ``(fq_rescale(a, params), a as
    int64 if want_acc)``, computed by :func:`fakequant_kernels.rescale_rows` with the same
    float64 operations as ``src + bias``, :func:`_fq_rescale` and ``astype(np.int64)``.
    The codes are int64, or ``out_dtype`` (int8 / uint8 when every code of ``params``'
    output format fits it).
    None when the kernel does not apply (other dtype, fewer than two axes, no element,
    a per-channel length other than C, unknown rounding): the caller uses numpy."""
    if src.dtype != np.float64 or src.ndim < 2 or src.size == 0:
        return None
    c = src.shape[1]
    block = _block_vector(params)
    if block is None or block[0].shape[0] not in (1, c):
        return None
    if bias is not None and bias.shape != (c,):
        return None
    eff = np.array(np.broadcast_to(block[0], (c,)), dtype=np.float64)  # a writable copy
    p = block[1]
    s2 = _rows(src, np.float64)
    b = np.zeros(c) if bias is None else np.ascontiguousarray(bias, dtype=np.float64)
    out = _code_array(src.shape, out_dtype)
    o2 = out.reshape(s2.shape)
    acc = np.empty(src.shape, dtype=np.int64) if want_acc else None
    a2 = acc.reshape(s2.shape) if acc is not None else np.empty((0, 0), dtype=np.int64)
    fk.run_rows(lambda r0, r1: fk.rescale_rows(s2, b, eff, p, o2, a2, r0, r1), s2.shape[0],
                src.size)
    return out, acc


def _fq_rescale(centred: np.ndarray, params: RequantParams, channel_axis: int) -> np.ndarray:
    """The numpy formula of :func:`fq_rescale` (kept as the reference of the kernels)."""
    eff = effective_scale(params)
    if eff.shape[0] > 1:
        shape = [1] * centred.ndim
        shape[channel_axis] = eff.shape[0]
        eff = eff.reshape(shape)
    else:
        eff = eff.reshape(())
    cfg = params.config
    rounding = _MODE_ROUNDING.get(cfg.mode, cfg.rounding)
    v = np.asarray(round_float(centred * eff, rounding))  # a writable array, even 0-d
    v += params.zero_point
    if cfg.output_overflow == "wrap":
        span = float(1 << params.out_bits)
        v = v - params.qmin
        v = v - span * np.floor(v / span) + params.qmin
    return np.clip(v, params.act_min, params.act_max, out=v).astype(np.int64)


#: Largest float64 patch matrix built at once (images are processed in chunks below it).
_PATCH_BYTES = 1 << 27


def _conv_int(x: np.ndarray, zero_point: int, w: np.ndarray, a: Mapping,
              xbound: int) -> np.ndarray | None:
    """Σ w·(x − z) over sliding windows with zero (real 0.0) padding, as exact float64
    values, by the 16-bit integer kernels (arithmetic.md §7.5) reading the codes ``x`` and
    centring them as they pack them; None where they do not apply (groups, operands wider
    than int16, a partial sum that could reach 2^31 — ``xbound`` ≥ max|x − z|)."""
    m, cg, kh, kw = w.shape
    # the engine's §7.5 bound with bias 0 in a 32-bit register: every partial sum < 2^31
    packed = (int_weights(w, "conv", int(xbound), cg * kh * kw, np.zeros(0, dtype=np.int64),
                          32) if int(a["group"]) == 1 else None)
    if packed is None:
        return None
    t, left, b, r = (int(p) for p in a["pads"])
    sh, sw = (int(s) for s in a["strides"])
    dh, dw = (int(d) for d in a["dilations"])
    oh = conv_out_size(x.shape[2], kh, sh, t, b, dh)
    ow = conv_out_size(x.shape[3], kw, sw, left, r, dw)
    out = np.empty((x.shape[0], m, oh, ow))
    igemm.conv_acc(x, packed, np.zeros(m, dtype=np.int64), kernel=(kh, kw), strides=(sh, sw),
                   pads=(t, left, b, r), dilations=(dh, dw), offset=int(zero_point),
                   pad_value=int(zero_point), out=out, out_strides=(m * oh * ow, oh * ow, 1),
                   oh=oh, ow=ow)
    return out


def _conv_centred(xc: np.ndarray, w: np.ndarray, a: Mapping, xbound: float) -> np.ndarray:
    """Σ w·xc over sliding windows, with zero (real 0.0) padding, as exact float64 values:
    per chunk of images the windows are copied once to a [group, C/group·KH·KW, N·OH·OW]
    matrix and multiplied (batched over groups) by float BLAS on K-blocks, float32 where
    every partial sum of a block stays below 2^24 and float64 below 2^53
    (:func:`hwsim.exact.matmul.plan_product`, arithmetic.md §7.4 fact 1, with ``xbound`` ≥
    max|xc| from the input's format). Block sums add in float64, exact below 2^53
    (checked). :func:`_conv_int` is tried first."""
    t, left, b, r = (int(p) for p in a["pads"])
    sh, sw = (int(s) for s in a["strides"])
    dh, dw = (int(d) for d in a["dilations"])
    group = int(a["group"])
    m, cg, kh, kw = w.shape
    n = xc.shape[0]
    k = cg * kh * kw
    wmax = float(max_abs(w))
    if xc.size and w.size and k * float(xbound) * wmax > 2.0**53:
        raise HwsimError(f"conv: K·max|x − z|·max|w| exceeds 2^53 (K = {k}); the float64 "
                         f"reference would not be exact")
    plan = plan_product(int(xbound), int(wmax), k)  # float32 or float64 after the check
    xp = pad_input(xc, (t, left, b, r), 0.0, plan.dtype)
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # [N, C, OH, OW, KH, KW]
    oh, ow = win.shape[2:4]
    wg = w.reshape(group, m // group, k).astype(plan.dtype)
    out = np.empty((n, m, oh * ow))
    step = max(1, _PATCH_BYTES // max(1, xp.itemsize * k * group * oh * ow))
    step = min(step, -(-n // threads())) if n else 1

    def run(b0: int) -> None:
        part = win[b0:b0 + step]
        nb = part.shape[0]
        cols = np.ascontiguousarray(part.transpose(1, 4, 5, 0, 2, 3))
        y = blocked_matmul(wg, cols.reshape(group, k, nb * oh * ow), plan)  # [G, M/G, nb·P]
        out[b0:b0 + nb] = y.reshape(m, nb, oh * ow).transpose(1, 0, 2)

    parallel_map(run, range(0, n, step))
    return out.reshape(n, m, oh, ow)


def _pool_out(hw: tuple[int, ...], a: Mapping) -> tuple[int, int]:
    """(OH, OW) of a pooling window (ceil_mode 0)."""
    t, left, b, r = (int(p) for p in a["pads"])
    kh, kw = (int(k) for k in a["kernel_shape"])
    sh, sw = (int(s) for s in a["strides"])
    dh, dw = (int(d) for d in a["dilations"])
    return ((hw[0] + t + b - dh * (kh - 1) - 1) // sh + 1,
            (hw[1] + left + r - dw * (kw - 1) - 1) // sw + 1)


def _centred_bias(node: QNode, folded: np.ndarray, zx: int) -> np.ndarray:
    w = node.arrays["weight"]
    return (np.asarray(folded, dtype=np.int64)
            + zx * w.reshape(w.shape[0], -1).sum(axis=1, dtype=np.int64)).astype(np.float64)


def run_fakequant(g: QGraph, feeds: Mapping[str, np.ndarray], *,
                  layerwise: ExecResult | None = None) -> ExecResult:
    """Run ``g`` on ``feeds`` (as :func:`hwsim.reference.golden_exec.run_golden`) in float64
    fake-quant arithmetic; returns every tensor's integer codes (int64) and the exact
    float64 accumulators (as int64) of conv/gemm nodes. ``overflow_events`` is empty.

    With ``layerwise`` (a result of another executor on the same feeds) every node reads
    its inputs, and their qparams, from ``layerwise`` instead of from this run, so each
    op is compared in isolation (errors do not propagate from layer to layer)."""
    tensors: dict[str, TensorQ] = dict(g.tensors)
    if g.dynamic:
        for name in g.inputs:
            tensors[name] = input_tensorq(name, np.asarray(feeds[name]), g.tensors[name].dtype)
    codes = quantize_feeds(g, feeds, tensors)
    accs: dict[str, np.ndarray] = {}
    readers: dict[str, int] = {}  # conv/gemm nodes still to read each tensor
    for node in g.nodes:
        if node.op in ("conv", "gemm"):
            readers[node.inputs[0]] = readers.get(node.inputs[0], 0) + 1
    centred = _CentredInputs(readers)
    # 8-bit tensors only conv / add / max pool read are kept as int8 / uint8, as in the
    # golden model (compiler.md §5); a layer-wise run reads its inputs from another result
    compact = compact_dtypes(g) if layerwise is None else {}
    for node in g.nodes:
        if layerwise is not None:
            for t in node.inputs:
                codes[t] = layerwise.codes[t]
                tensors[t] = layerwise.tensors[t]
        try:
            codes[node.output] = _run_node(g, node, codes, tensors, accs, centred,
                                           compact.get(node.output))
        except HwsimError as exc:
            raise type(exc)(f"node {node.name!r} ({node.op}): {exc}") from exc
    return ExecResult(codes=Int64Arrays(codes), tensors=tensors,
                      accumulators=Int64Arrays(accs), overflow_events={})


@dataclass(frozen=True, eq=False)
class _BiasedSums:
    """A conv/gemm's exact float64 sums ``[N, C, ...]`` and its centred bias ``[C]``: the
    accumulators are ``(sums + bias).astype(int64)``, the float64 operations of the fused
    rescale (:func:`rescale_fused`), made only when they are read (``np.asarray``, as
    :class:`hwsim.reference.golden_exec.Int64Arrays` does)."""

    sums: np.ndarray
    bias: np.ndarray

    def __array__(self, dtype=None, copy=None) -> np.ndarray:  # noqa: ANN001 - numpy protocol
        shape = (1, -1) + (1,) * (self.sums.ndim - 2)
        acc = (self.sums + self.bias.reshape(shape)).astype(np.int64)
        return acc if dtype is None else acc.astype(dtype, copy=False)


class _CentredInputs:
    """The centred float64 input of conv/gemm nodes, kept while another conv/gemm node is
    still to read the same codes (a residual block's first conv and its downsample)."""

    def __init__(self, readers: dict[str, int]) -> None:
        self.readers = readers
        self.kept: dict[str, tuple[np.ndarray, int, np.ndarray]] = {}

    def get(self, name: str, x: np.ndarray, zero_point: int) -> np.ndarray:
        kept = self.kept.pop(name, None)
        if kept is not None and kept[0] is x and kept[1] == zero_point:
            xc = kept[2]
        else:
            xc = _centred(x, zero_point)
        self.readers[name] = self.readers.get(name, 1) - 1
        if self.readers[name] > 0:
            self.kept[name] = (x, zero_point, xc)
        return xc


def _centred(x: np.ndarray, zero_point: int) -> np.ndarray:
    """``x.astype(np.float64) − z`` (float64), in one pass of a Numba kernel for integer
    arrays of two or more axes."""
    if x.ndim < 2 or x.size == 0 or x.dtype.kind not in "iu":
        xc = x.astype(np.float64)
        xc -= zero_point
        return xc
    x2 = _codes(x).reshape(-1, x.shape[-1])
    out = np.empty(x.shape, dtype=np.float64)
    o2 = out.reshape(x2.shape)
    zp = float(zero_point)
    fk.run_rows(lambda r0, r1: fk.centre_rows(x2, zp, o2, r0, r1), x2.shape[0], x.size)
    return out


def fq_add(qa: np.ndarray, qb: np.ndarray, za: int, zb: int, left_shift: int,
           req: Mapping[str, RequantParams],
           ranges: tuple[int, int, int, int] | None = None,
           out_dtype: np.dtype | None = None) -> np.ndarray:
    """§10.1 add in float64: ``fq_rescale((qa − za)·2^L, in0) + fq_rescale((qb − zb)·2^L,
    in1)`` (int64 codes) requantized by ``out``; one pass of
    :func:`fakequant_kernels.add_rows` when the inputs have one shape of two or more axes
    and every block has 1 or C channels, else :func:`_fq_add_numpy`.

    With per-tensor blocks the result is a function of the two codes only: when the pairs
    of codes in range are fewer than the elements / :data:`_ADD_TABLE_RATIO`, the kernel
    computes it once per pair and every element reads its table
    (:func:`fakequant_kernels.lookup2_rows`), the same values. The range is ``ranges`` =
    (qa min, qa max, qb min, qb max), the inputs' formats, else that of the data; a code
    outside it sends the whole add back to the per-element kernel. int8 / uint8 codes are
    read as they are; ``out_dtype``: as :func:`rescale_fused`."""
    qa = np.asarray(qa)
    qb = np.asarray(qb)
    blocks = [_block_vector(req[k]) for k in ("in0", "in1", "out")]
    if (qa.shape != qb.shape or qa.ndim < 2 or qa.size == 0
            or qa.dtype.kind not in "iu" or qb.dtype.kind not in "iu"
            or any(b is None or b[0].shape[0] not in (1, qa.shape[1]) for b in blocks)):
        return _fq_add_numpy(qa, qb, za, zb, left_shift, req)
    c = qa.shape[1]
    eff = np.stack([np.broadcast_to(b[0], (c,)) for b in blocks]).astype(np.float64)
    p = np.stack([b[1] for b in blocks])
    a2 = _codes(qa).reshape(qa.shape[0] * qa.shape[1], -1)
    b2 = _codes(qb).reshape(a2.shape)
    out = _code_array(qa.shape, out_dtype)
    o2 = out.reshape(a2.shape)
    shift = float(1 << int(left_shift))
    fza, fzb = float(za), float(zb)
    if all(b[0].shape[0] == 1 for b in blocks):
        lo_a, hi_a, lo_b, hi_b = ranges if ranges is not None else (
            int(a2.min()), int(a2.max()), int(b2.min()), int(b2.max()))
        if (hi_a - lo_a + 1) * (hi_b - lo_b + 1) * _ADD_TABLE_RATIO <= qa.size:
            ga, gb = (np.ascontiguousarray(g) for g in np.meshgrid(
                np.arange(lo_a, hi_a + 1, dtype=np.int64),
                np.arange(lo_b, hi_b + 1, dtype=np.int64), indexing="ij"))
            table = np.empty(ga.shape, dtype=np.int64)
            fk.add_rows(ga, gb, fza, fzb, shift, np.ascontiguousarray(eff[:, :1]), p, table, 0,
                        ga.shape[0])
            missing = fk.run_rows(
                lambda r0, r1: fk.lookup2_rows(a2, b2, table, lo_a, lo_b, o2, r0, r1),
                a2.shape[0], qa.size)
            if not any(missing):
                return out
    fk.run_rows(lambda r0, r1: fk.add_rows(a2, b2, fza, fzb, shift, eff, p, o2, r0, r1),
                a2.shape[0], qa.size)
    return out


#: An add reads a table of every pair of codes when it has this many times more elements
#: (a pair costs about five element lookups to compute).
_ADD_TABLE_RATIO = 2


def _fq_add_numpy(qa: np.ndarray, qb: np.ndarray, za: int, zb: int, left_shift: int,
                  req: Mapping[str, RequantParams]) -> np.ndarray:
    """The numpy formula of :func:`fq_add` (kept as the reference of its kernel)."""
    shift = float(1 << int(left_shift))
    ra = _fq_rescale((qa.astype(np.float64) - za) * shift, req["in0"], 1)
    rb = _fq_rescale((qb.astype(np.float64) - zb) * shift, req["in1"], 1)
    return _fq_rescale((ra + rb).astype(np.float64), req["out"], 1)


def fq_maxpool(x: np.ndarray, tin: TensorQ, a: Mapping,
               out_dtype: np.dtype | None = None) -> np.ndarray:
    """Max pooling of codes ``x`` [N, C, H, W] on real values ``scale · (q − z)`` (padding
    −inf), back to codes by ``rint(max / scale) + z``: one pass of
    :func:`fakequant_kernels.maxpool_rows` over the N·C planes (the same float64
    operations as :func:`_maxpool_numpy`). int8 / uint8 codes are read as they are;
    ``out_dtype``: as :func:`rescale_fused`."""
    t, left, _, _ = (int(p) for p in a["pads"])
    kh, kw = (int(k) for k in a["kernel_shape"])
    sh, sw = (int(s) for s in a["strides"])
    dh, dw = (int(d) for d in a["dilations"])
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype.kind not in "iu" or x.size == 0 or not tin.scale > 0:
        return _maxpool_numpy(x, tin, a)
    oh, ow = _pool_out(x.shape[2:], a)
    if oh <= 0 or ow <= 0:
        return _maxpool_numpy(x, tin, a)
    n, c, h, w = x.shape
    x3 = _codes(x).reshape(n * c, h, w)
    out = _code_array((n, c, oh, ow), out_dtype)
    o3 = out.reshape(n * c, oh, ow)
    geom = np.array([kh, kw, sh, sw, dh, dw, t, left], dtype=np.int64)
    scale, zp = float(tin.scale), float(tin.zero_point)
    fk.run_rows(lambda r0, r1: fk.maxpool_rows(x3, scale, zp, geom, o3, r0, r1), n * c,
                out.size * kh * kw)
    return out


def _maxpool_numpy(x: np.ndarray, tin: TensorQ, a: Mapping) -> np.ndarray:
    """The numpy formula of :func:`fq_maxpool` (kept as the reference of its kernel)."""
    t, left, b, r = (int(p) for p in a["pads"])
    kh, kw = (int(k) for k in a["kernel_shape"])
    sh, sw = (int(s) for s in a["strides"])
    dh, dw = (int(d) for d in a["dilations"])
    xc = x.astype(np.float64)
    xc -= tin.zero_point
    out = np.empty((x.shape[0], x.shape[1]) + _pool_out(x.shape[2:], a), dtype=np.int64)

    def pool(ch: slice) -> None:  # channels are independent: parts in parallel threads
        real = tin.scale * xc[:, ch]
        xp = pad_input(real, (t, left, b, r), -np.inf, np.float64)
        win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
        win = win[:, :, ::sh, ::sw, ::dh, ::dw]
        best = win[..., 0, 0].copy()  # running maximum over the kernel offsets
        for i in range(kh):
            for j in range(kw):
                np.maximum(best, win[..., i, j], out=best)
        out[:, ch] = np.rint(best / tin.scale) + tin.zero_point

    c = x.shape[1]
    edges = np.linspace(0, c, min(c, threads()) + 1).astype(int)
    parallel_map(pool, [slice(int(edges[i]), int(edges[i + 1]))
                        for i in range(len(edges) - 1)])
    return out


def _run_node(g: QGraph, node: QNode, codes: dict[str, np.ndarray],
              tensors: dict[str, TensorQ], accs: dict[str, np.ndarray],
              centred: _CentredInputs | None = None,
              out_dtype: np.dtype | None = None) -> np.ndarray:
    a = node.attrs
    tin = tensors[node.inputs[0]]
    x = codes[node.inputs[0]]
    if node.op in ("conv", "gemm"):
        folded = dynamic_bias(node, tin, g.acc_bits) if g.dynamic else node.arrays["bias"]
        bias = _centred_bias(node, folded, tin.zero_point)
        xbound = max(tin.qmax - tin.zero_point, tin.zero_point - tin.qmin)
        acc = (_conv_int(x, tin.zero_point, node.arrays["weight"], a, xbound)
               if node.op == "conv" else None)
        if acc is None:
            xc = (centred.get(node.inputs[0], x, tin.zero_point) if centred is not None
                  else _centred(x, tin.zero_point))
            if node.op == "conv":
                acc = _conv_centred(xc, node.arrays["weight"], a, xbound)
            else:
                w = node.arrays["weight"].astype(np.float64)
                acc = parallel_matmul(xc, np.ascontiguousarray(w.T))
            del xc
        if not g.dynamic:  # bias add and rescale in one pass
            fused = rescale_fused(acc, node.requant["out"], bias, out_dtype=out_dtype)
            if fused is not None:
                accs[node.name] = _BiasedSums(acc, bias)  # int64 accumulators when read
                return fused[0]
        acc += bias.reshape((1, -1) + (1,) * (acc.ndim - 2))
        accs[node.name] = acc.astype(np.int64)
        if g.dynamic:
            tensors[node.output], params = dynamic_output(g, node, tin, accs[node.name])
        else:
            params = node.requant["out"]
        return fq_rescale(acc, params)
    req = node.requant
    if node.op == "add":
        tb = tensors[node.inputs[1]]
        if g.dynamic:
            tensors[node.output], req = dynamic_add(g, node, tin, tb, x, codes[node.inputs[1]])
        return fq_add(x, codes[node.inputs[1]], tin.zero_point, tb.zero_point,
                      int(a["left_shift"]), req, (tin.qmin, tin.qmax, tb.qmin, tb.qmax),
                      out_dtype)
    if node.op == "concat":
        axis = int(a["axis"])
        if g.dynamic:
            tensors[node.output], req = dynamic_concat(
                g, node, [tensors[t] for t in node.inputs], [codes[t] for t in node.inputs],
                axis)
        parts = [fq_rescale(codes[t].astype(np.float64) - tensors[t].zero_point,
                            req[f"in{i}"]) for i, t in enumerate(node.inputs)]
        return np.concatenate(parts, axis=axis)
    if g.dynamic:
        tensors[node.output] = TensorQ(node.output, tin.dtype, tin.scale, tin.zero_point)
    if node.op == "maxpool":
        return fq_maxpool(x, tin, a, out_dtype)
    if node.op == "flatten":
        return x.reshape(int(np.prod(x.shape[:int(a["axis"])], dtype=np.int64)), -1)
    if node.op == "reshape":
        return x.reshape((x.shape[0],) + tuple(int(d) for d in a["shape"]))
    if node.op not in ("avgpool", "global_avgpool", "clamp", "pad"):
        from hwsim.reference.engine_ops import ENGINE_KERNELS  # arith §11.2: the engine's own

        if node.op in ENGINE_KERNELS:  # float32 kernel is its reference (no float64 formula)
            return ENGINE_KERNELS[node.op](node, codes, tensors)
        raise ModelError(f"no fake-quant kernel for op {node.op!r}")
    xc = _centred(x, tin.zero_point)
    if node.op in ("avgpool", "global_avgpool"):
        if node.op == "global_avgpool":
            mean = xc.mean(axis=(2, 3), keepdims=True)
        else:
            t, left, b, r = (int(p) for p in a["pads"])
            kh, kw = (int(k) for k in a["kernel_shape"])
            sh, sw = (int(s) for s in a["strides"])
            pad = ((0, 0), (0, 0), (t, b), (left, r))
            sums = sliding_window_view(np.pad(xc, pad), (kh, kw), axis=(2, 3))
            sums = sums[:, :, ::sh, ::sw].sum(axis=(4, 5))
            if bool(a["count_include_pad"]):
                count = float(kh * kw)
            else:
                ones = np.pad(np.ones(xc.shape[2:]), pad[2:])
                count = sliding_window_view(ones, (kh, kw))[::sh, ::sw].sum(axis=(2, 3))
            mean = sums / count
        return (round_float(mean, "half_away") + tin.zero_point).astype(np.int64)
    if node.op == "clamp":
        lo_q, hi_q = fused_act_bounds(*a["act_range"], tin)
        lo = tin.scale * (lo_q - tin.zero_point)
        hi = tin.scale * (hi_q - tin.zero_point)
        real = np.clip(tin.scale * xc, lo, hi)
        return (np.rint(real / tin.scale) + tin.zero_point).astype(np.int64)
    p = [int(v) for v in a["pads"]]  # pad
    widths = [(p[i], p[i + x.ndim]) for i in range(x.ndim)]
    fill = float(pad_code(a["value"], tin) - tin.zero_point)
    return (np.pad(xc, widths, constant_values=fill) + tin.zero_point).astype(np.int64)

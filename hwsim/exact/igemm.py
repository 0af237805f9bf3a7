"""Exact integer products on 16-bit operands with 32-bit wrap-around sums (arithmetic.md §7.5).

The C kernels of :mod:`hwsim.exact._igemm` compute ``bias[m] + Σ_k A[m, k]·B[k, q]`` modulo
2^32 from int16 operands — pairs of products with the AVX2 instruction ``vpmaddwd`` where
the CPU has it, portable C elsewhere — and pack the activations themselves, block by block:
a convolution's NCHW input through padded pair planes (padding included), a strided
matrix's rows directly, so no patch matrix is built. A result is exact when its true value
lies in the int32 range, which the callers guarantee for every output they keep (§7.5): the
accumulator is at most 32 bits, and outputs whose bound ``|bias| + Σ|a|·|w|`` exceeds it
are recomputed step by step anyway. Matrix products of 8-bit activations by weights in
[−64, 64] use byte quads instead (``vpmaddubsw``, never saturated there; §7.5 "Byte
quads").

:func:`available` says whether the kernels can be used (extension built, vector unit
present); :func:`fits` whether operands fit; :func:`pack_weights` prepares the weights
once per layer; :func:`conv_acc` and :func:`matmul_acc` run the product, split among
:func:`hwsim.exact.matmul.threads` threads started by the C code (ctypes releases the GIL
for the call).
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hwsim.errors import HwsimError
from hwsim.exact.matmul import threads

__all__ = ["MR", "INT16_MIN", "INT16_MAX", "QUAD_WMAX", "PackedWeights", "available", "set_enabled",
           "use_portable", "simd", "fits", "pack_weights", "pack_conv_weights",
           "cached_weights", "conv_acc", "matmul_acc", "Float64Requant"]

#: Rows of A per tile of the kernel (A is packed in tiles of this many rows).
MR = 6
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
#: Largest |w| of the byte-quad kernel: 255·(64 + 64) = 32640 fits the int16 lane of
#: ``vpmaddubsw`` (§7.5 "Byte quads").
QUAD_WMAX = 64
#: Columns per thread below which one thread does the whole product.
_MIN_COLS_PER_THREAD = 64
#: Multiply-adds below which :func:`matmul_acc` runs in the calling thread only (starting
#: and joining a thread costs about as much as 4·10^6 multiply-adds here: a 1×2048×1000
#: product took 0.08 ms on one thread, 0.13 ms on two).
_MIN_MACS_PER_CALL_THREADS = 1 << 22
#: Element types of the B source array, as the C code numbers them.
_TYPES = {np.dtype(np.int8): 0, np.dtype(np.uint8): 1, np.dtype(np.int16): 2,
          np.dtype(np.uint16): 3, np.dtype(np.int32): 4, np.dtype(np.int64): 5,
          np.dtype(np.float64): 6}

#: Output element types, as the C code numbers them (int32: the register itself).
_OUT_TYPES = {np.dtype(np.int64): 0, np.dtype(np.float64): 1, np.dtype(np.int32): 2}

_i64 = ctypes.c_int64


class _BSource(ctypes.Structure):
    """Mirror of the C ``bsrc_t`` (the geometry of the B operand)."""

    _fields_ = [("src", ctypes.c_void_p), ("type", _i64), ("is_conv", _i64),
                ("sk", _i64), ("sq", _i64),
                ("C", _i64), ("H", _i64), ("W", _i64), ("sn", _i64), ("sc", _i64),
                ("KH", _i64), ("KW", _i64), ("SH", _i64), ("SW", _i64), ("PT", _i64),
                ("PL", _i64), ("DH", _i64), ("DW", _i64), ("OH", _i64), ("OW", _i64),
                ("offset", _i64), ("pad_value", _i64), ("K", _i64), ("quad", _i64)]


class _Requant(ctypes.Structure):
    """Mirror of the C ``requant_t`` (the requantization fused into a matrix product)."""

    _fields_ = [("scale", ctypes.c_void_p), ("rounding", _i64), ("z", ctypes.c_double),
                ("lo", ctypes.c_double), ("hi", ctypes.c_double), ("codes", ctypes.c_void_p),
                ("code_type", _i64)]


#: The roundings of the fused requantization, as the C code numbers them (§6 names).
_ROUNDINGS = {"half_up": 0, "half_away": 1, "half_even": 2, "floor": 3, "toward_zero": 4}
#: Code arrays the fused requantization writes, as the C code numbers them.
_CODE_TYPES = {np.dtype(np.int64): 0, np.dtype(np.int8): 1, np.dtype(np.uint8): 2}


@dataclass(frozen=True)
class Float64Requant:
    """A requantization to fuse into :func:`matmul_acc` (arithmetic.md §8.4 "Evaluation in
    float64"): ``codes[q, m] = clamp(R(acc[q, m]·scales[m]) + zero_point, act_min,
    act_max)`` with ``R`` the §6 ``rounding``. The caller guarantees the conditions of that
    section (``scales`` from :func:`hwsim.arith.jit_arrays.f64_scales`) and that every code
    fits ``codes`` (int64, int8 or uint8, ``[Q, M]`` C-contiguous)."""

    scales: npt.NDArray[np.float64]
    rounding: str
    zero_point: int
    act_min: int
    act_max: int
    codes: npt.NDArray[np.integer]


def _load() -> ctypes.CDLL | None:
    try:
        from hwsim.exact import _igemm  # the extension module (optional build)
    except ImportError:
        return None
    lib = ctypes.CDLL(_igemm.__file__)
    lib.hw_igemm_parallel.restype = ctypes.c_int
    lib.hw_igemm_parallel.argtypes = [ctypes.c_void_p, _i64, _i64, ctypes.c_void_p,
                                      ctypes.POINTER(_BSource), ctypes.c_void_p, _i64, _i64,
                                      _i64, _i64, _i64, ctypes.c_void_p, _i64]
    lib.hw_igemm_rows.restype = ctypes.c_int
    lib.hw_igemm_rows.argtypes = [ctypes.c_void_p, _i64, _i64, _i64, ctypes.c_void_p,
                                  ctypes.POINTER(_BSource), _i64, _i64, _i64, ctypes.c_void_p,
                                  _i64, ctypes.POINTER(_Requant)]
    lib.hw_memeq.restype = ctypes.c_int
    lib.hw_memeq.argtypes = [ctypes.c_void_p, ctypes.c_void_p, _i64]
    lib.hw_igemm_simd.restype = ctypes.c_int
    lib.hw_bsrc_size.restype = _i64
    lib.hw_requant_size.restype = _i64
    lib.hw_igemm_portable.restype = ctypes.c_int
    lib.hw_igemm_portable.argtypes = [ctypes.c_int]
    if (lib.hw_bsrc_size() != ctypes.sizeof(_BSource)
            or lib.hw_requant_size() != ctypes.sizeof(_Requant)):
        return None
    return lib


_LIB = _load()
_ENABLED = True


def available() -> bool:
    """The kernels are built, enabled (:func:`set_enabled`) and the CPU has their vector
    unit (AVX2): the integer path is then the fastest exact product here. Without the
    vector unit the portable C kernel still works (``force=True``) but float BLAS is
    faster."""
    return _ENABLED and _LIB is not None and bool(_LIB.hw_igemm_simd())


def set_enabled(on: bool) -> bool:
    """Let :func:`available` say yes (``on``) or always no (the float BLAS path of §7.4 is
    then used everywhere, as on a machine without the kernels); returns the old setting."""
    global _ENABLED
    old, _ENABLED = _ENABLED, bool(on)
    return old


def simd() -> bool:
    """The vector kernel (not the portable C one) runs on this CPU."""
    return _LIB is not None and bool(_LIB.hw_igemm_simd())


def use_portable(on: bool) -> bool:
    """Make the C code run its portable kernel even where the vector one could (``on``), as
    on a CPU without AVX2, to test it; returns the old setting."""
    if _LIB is None:
        return False
    return bool(_LIB.hw_igemm_portable(int(bool(on))))


def fits(lo: int, hi: int) -> bool:
    """Values in [lo, hi] are int16."""
    return INT16_MIN <= int(lo) and int(hi) <= INT16_MAX


@dataclass(frozen=True, eq=False)
class PackedWeights:
    """The weights ``w[M, K]`` as the kernels read them: int16 pairs of consecutive k
    (K padded to even with 0). ``data``: the broadcast operand of a convolution, in tiles
    of :data:`MR` rows (rows past M are 0), ``[ceil(M/MR), K/2, MR]`` uint32. ``cols``
    (matrix products only): the vector operand in tiles of 16 output channels, each
    tile's pairs contiguous, ``[ceil(M/16), K/2, 16]`` uint32 (channels past M are 0)."""

    data: npt.NDArray[np.uint32]
    rows: int
    k: int
    #: max |w| (0 for no weights)
    wmax: int = 0
    cols: npt.NDArray[np.uint32] | None = None
    #: (matrix products with every weight in [-64, 64] only) the byte-quad vector operand
    #: ``[ceil(M/16), ceil(K/4), 16]`` uint32, four int8 weights of consecutive k per word
    quads: npt.NDArray[np.uint32] | None = None
    #: with ``quads`` or ``conv_quads``: ``Σ_k w[m, k]`` per channel (int64), for the
    #: activation shift
    colsum: npt.NDArray[np.int64] | None = None
    #: (convolutions with every weight in [-64, 64] only) the byte-quad broadcast operand
    #: ``[ceil(M/MR), KH·KW·ceil(C/4), MR]`` uint32, four int8 weights of consecutive
    #: channels at one kernel position per word
    conv_quads: npt.NDArray[np.uint32] | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.data, self.cols, self.quads, self.colsum,
                                      self.conv_quads) if a is not None)

    @property
    def k2(self) -> int:
        return (self.k + 1) // 2


def pack_weights(w: npt.NDArray[np.integer], *, matrix: bool = False) -> PackedWeights:
    """Pack integer weights ``w[M, K]`` (every value in int16: check with :func:`fits`);
    ``matrix``: also as the vector operand of :func:`matmul_acc`."""
    w = np.asarray(w)
    m, k = w.shape
    mt = -(-m // MR)
    w16 = np.zeros((mt * MR, k + (k & 1)), dtype=np.int16)
    w16[:m, :k] = w
    pairs = w16.view(np.uint32)  # little-endian: low half = even k, high half = odd k
    if np.little_endian is False:  # pragma: no cover - no big-endian machine here
        raise HwsimError("integer product kernels: big-endian machines are not supported")
    data = np.ascontiguousarray(pairs.reshape(mt, MR, -1).transpose(0, 2, 1))
    wmax = int(np.abs(w16).max()) if w16.size else 0
    cols = quads = colsum = None
    if matrix:
        cols = _channel_tiles(pairs[:m], m)
        if wmax <= QUAD_WMAX:
            w8 = np.zeros((m, -(-k // 4) * 4), dtype=np.int8)
            w8[:, :k] = w
            quads = _channel_tiles(w8.view(np.uint32), m)
            colsum = w16[:m].sum(axis=1, dtype=np.int64)
    return PackedWeights(data, m, k, wmax, cols, quads, colsum)


def _channel_tiles(words: npt.NDArray[np.uint32], m: int) -> npt.NDArray[np.uint32]:
    """``words[M, U]`` (one row per output channel) as tiles of 16 channels, each tile's
    words k-major and contiguous: ``[ceil(M/16), U, 16]`` (channels past M zero)."""
    ntj = -(-m // 16)
    tiles = np.zeros((ntj * 16, words.shape[1]), dtype=np.uint32)
    tiles[:m] = words
    return np.ascontiguousarray(tiles.reshape(ntj, 16, -1).transpose(0, 2, 1))


def pack_conv_weights(w: npt.NDArray[np.integer]) -> PackedWeights:
    """Pack convolution weights ``w[M, C, KH, KW]`` (one group) for :func:`conv_acc`: the
    reduction runs over (kh, kw, c) with the channels padded to an even count (weight 0),
    so that each pair holds two channels at one kernel position."""
    w = np.asarray(w)
    m, c, kh, kw = w.shape
    wt = np.zeros((m, kh, kw, c + (c & 1)), dtype=np.int16)
    wt[..., :c] = w.transpose(0, 2, 3, 1)
    packed = pack_weights(wt.reshape(m, -1))
    if packed.wmax > QUAD_WMAX:
        return packed
    # byte quads: four consecutive channels at one kernel position (channels padded to a
    # multiple of 4 with weight 0), tiles of MR output channels as the pairs
    w8 = np.zeros((-(-m // MR) * MR, kh, kw, -(-c // 4) * 4), dtype=np.int8)
    w8[:m, ..., :c] = w.transpose(0, 2, 3, 1)
    words = w8.reshape(w8.shape[0], -1).view(np.uint32)
    conv_quads = np.ascontiguousarray(words.reshape(-1, MR, words.shape[1]).transpose(0, 2, 1))
    colsum = wt[:, :, :, :c].reshape(m, -1).sum(axis=1, dtype=np.int64)
    return dataclasses.replace(packed, colsum=colsum, conv_quads=conv_quads)


#: Bytes of packed weights (and their reference copies) kept by :func:`cached_weights`.
CACHE_BYTES = 1 << 28
_CACHE: OrderedDict[int, tuple] = OrderedDict()
_CACHE_LOCK = threading.Lock()
#: Keys of cached arrays that died (weakref callbacks only append here: a callback may run
#: during garbage collection inside any code, including while ``_CACHE_LOCK`` is held).
_DEAD: list[int] = []


#: How :func:`cached_weights` reads its array: ``w[M, K]``, ``w[K, M]`` or conv ``w[M, C, KH, KW]``.
WEIGHT_KINDS = ("rows", "cols", "conv")


def cached_weights(w: npt.NDArray[np.integer], kind: str) -> PackedWeights | None:
    """The packed weights of ``w`` — :func:`pack_weights` of ``w[M, K]`` (``kind="rows"``)
    or of ``w[K, M]`` transposed (``"cols"``), :func:`pack_conv_weights` (``"conv"``) — or
    None when some weight is not an int16; remembered for the same array object while it
    lives and holds the same values (compared with a copy kept at packing time), so that a
    model's constant weights are packed once, not once per batch. Up to
    :data:`CACHE_BYTES`."""
    if kind not in WEIGHT_KINDS:
        raise HwsimError(f"weights: kind must be one of {WEIGHT_KINDS}, got {kind!r}")
    key = id(w)
    with _CACHE_LOCK:
        _purge()
        hit = _CACHE.get(key)
    if hit is not None:
        ref, hit_kind, copy, packed = hit
        if (ref() is w and hit_kind == kind and copy.shape == w.shape
                and copy.dtype == w.dtype and _same_values(copy, w)):
            return packed
    wa = np.asarray(w)
    if wa.size and not (wa.dtype.kind in "iu" or np.all(np.mod(wa, 1) == 0)):
        return None
    lo = int(wa.min()) if wa.size else 0
    hi = int(wa.max()) if wa.size else 0
    if not fits(lo, hi):
        return None
    packed = (pack_conv_weights(wa) if kind == "conv"
              else pack_weights(wa.T if kind == "cols" else wa, matrix=True))
    try:
        ref = weakref.ref(w, lambda _r, k=key: _DEAD.append(k))
    except TypeError:  # not weak-referenceable (e.g. a list): not cached
        return packed
    entry = (ref, kind, wa.copy(), packed)
    with _CACHE_LOCK:
        _purge()
        _CACHE[key] = entry
        _CACHE.move_to_end(key)
        total = sum(e[2].nbytes + e[3].nbytes for e in _CACHE.values())
        while total > CACHE_BYTES and len(_CACHE) > 1:
            _, old = _CACHE.popitem(last=False)
            total -= old[2].nbytes + old[3].nbytes
    return packed


def _same_values(copy: npt.NDArray, w: npt.NDArray) -> bool:
    """``w`` (same shape and dtype as ``copy``) holds the values of ``copy``: a byte
    comparison for a contiguous ``w`` (bytes equal implies values equal; a ``-0.0`` that
    became ``0.0`` only costs a repacking), else :func:`numpy.array_equal`."""
    if _LIB is not None and w.flags.c_contiguous and copy.flags.c_contiguous:
        return bool(_LIB.hw_memeq(copy.ctypes.data, w.ctypes.data, copy.nbytes))
    return bool(np.array_equal(copy, w))


def _purge() -> None:
    """Forget the entries of dead arrays (call with ``_CACHE_LOCK`` held). An entry whose
    id was reused by a new array is kept: its weak reference no longer points to it, so
    it is never served, and it is replaced when the new array is packed."""
    while _DEAD:
        key = _DEAD.pop()
        entry = _CACHE.get(key)
        if entry is not None and entry[0]() is None:
            del _CACHE[key]


def _source(arr: npt.NDArray) -> npt.NDArray:
    if arr.dtype not in _TYPES:
        return np.ascontiguousarray(arr, dtype=np.int64)
    return arr


def _check_run(pw: PackedWeights, bias: npt.NDArray[np.int64], out: npt.NDArray,
               force: bool) -> npt.NDArray[np.int64]:
    """The bias as a contiguous int64 array, after checking that the kernels can run."""
    if _LIB is None or not (force or simd()):
        raise HwsimError("integer product kernels are not available on this machine")
    b = np.ascontiguousarray(bias, dtype=np.int64)
    if b.shape != (pw.rows,):
        raise HwsimError(f"bias: expected {pw.rows} values, got shape {b.shape}")
    if out.dtype not in _OUT_TYPES:
        raise HwsimError(f"out: expected an int64, int32 or float64 array, got {out.dtype}")
    return b


def _byte_window(dtype: np.dtype, offset: int) -> int | None:
    """``lo`` of the 256-code window ``[lo, lo + 255]`` holding every ``a − offset`` of an
    int8 / uint8 operand (``dtype_min − offset``), else None: the byte-quad kernels read
    ``a − offset − lo`` as unsigned bytes (§7.5 "Byte quads")."""
    if dtype not in (np.int8, np.uint8):
        return None
    return int(np.iinfo(dtype).min) - int(offset)


def _shifted_bias(b: npt.NDArray[np.int64], lo: int,
                  colsum: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``b + lo·Σ_k w`` modulo 2^32, as the int32 the kernels read: the bias of byte quads
    whose activations are read ``lo`` below their value."""
    return (b + lo * colsum + (1 << 31)) % (1 << 32) - (1 << 31)


def _run(pw: PackedWeights, bias: npt.NDArray[np.int64], src: _BSource, cols: int, p: int,
         strides: tuple[int, int, int], out: npt.NDArray[np.int64], force: bool,
         words: npt.NDArray[np.uint32] | None = None, bias_shift: int = 0) -> None:
    """The column-split product of ``src`` by the weights ``words`` (default: the pairs
    ``pw.data``; a byte-quad ``pw.conv_quads`` when ``src.quad``), the bias raised by
    ``bias_shift·Σ_k w`` modulo 2^32 (byte quads: the activation window's low end)."""
    b = _check_run(pw, bias, out, force)
    if bias_shift:
        b = _shifted_bias(b, bias_shift, pw.colsum)
    words = pw.data if words is None else words
    n_threads = max(1, min(threads(), cols // _MIN_COLS_PER_THREAD))
    edges = np.linspace(0, cols, n_threads + 1).astype(np.int64)
    # Columns split at multiples of 16 keep whole tiles in one thread.
    edges[1:-1] = edges[1:-1] // 16 * 16
    s_n, s_m, s_p = strides
    # The C code starts the threads (ctypes releases the GIL for the whole call).
    rc = _LIB.hw_igemm_parallel(words.ctypes.data, pw.rows, words.shape[1], b.ctypes.data,
                                ctypes.byref(src), edges.ctypes.data, n_threads, p, s_n, s_m,
                                s_p, out.ctypes.data, _OUT_TYPES[out.dtype])
    if rc != 0:
        raise MemoryError("integer product kernel: out of memory for a packing block")


def conv_acc(x: npt.NDArray[np.integer], pw: PackedWeights, bias: npt.NDArray[np.int64], *,
             kernel: tuple[int, int], strides: tuple[int, int],
             pads: tuple[int, int, int, int], dilations: tuple[int, int], offset: int,
             pad_value: int, out: npt.NDArray[np.int64], out_strides: tuple[int, int, int],
             oh: int, ow: int, force: bool = False, quads: bool = True) -> None:
    """``out[n, m, p] = bias[m] + Σ_k w[m, k]·(x_patch[k, (n, p)] − offset)`` modulo 2^32
    (int64 values sign-extended from int32, the int32 values themselves for an int32
    ``out``, float64 for a float64 ``out``) for a
    convolution of ``x[N, C, H, W]`` (one
    group; ``pw`` from :func:`pack_conv_weights`), padding positions holding
    ``pad_value`` (before the offset). Output element (n, m, p = oh·OW + ow) is written at
    ``out.flat[n·s_n + m·s_m + p·s_p]`` for ``out_strides = (s_n, s_m, s_p)`` in elements.

    ``x`` may be any view with unit-stride rows; the caller guarantees that every
    ``x − offset`` and ``pad_value − offset`` is an int16. With 8-bit ``x``, a padding value
    in the same 256-code window and weights packed as byte quads the byte-quad kernel runs
    (same result; ``quads=False`` keeps the pair kernel)."""
    x = _source(np.asarray(x))
    if x.strides[3] != x.itemsize or x.strides[2] != x.shape[3] * x.itemsize:
        x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    kh, kw = kernel
    if pw.k != (c + (c & 1)) * kh * kw:
        raise HwsimError(f"conv: packed weights have K = {pw.k}, the input needs "
                         f"{(c + (c & 1)) * kh * kw}")
    item = x.itemsize
    src = _BSource(src=x.ctypes.data, type=_TYPES[x.dtype], is_conv=1, sk=0, sq=0,
                   C=c, H=h, W=w, sn=x.strides[0] // item, sc=x.strides[1] // item,
                   KH=kh, KW=kw, SH=strides[0], SW=strides[1], PT=pads[0], PL=pads[1],
                   DH=dilations[0], DW=dilations[1], OH=oh, OW=ow, offset=int(offset),
                   pad_value=int(pad_value), K=pw.k)
    lo = _byte_window(x.dtype, offset)
    if (quads and pw.conv_quads is not None and lo is not None
            and 0 <= int(pad_value) - int(offset) - lo <= 255):
        # x − offset and the padding lie in [lo, lo + 255]: the planes hold the bytes
        # x − offset − lo and the bias gains lo·Σ_k w (§7.5 "Byte quads")
        src.offset, src.quad = int(offset) + lo, 1
        _run(pw, bias, src, n * oh * ow, oh * ow, out_strides, out, force,
             words=pw.conv_quads, bias_shift=lo)
    else:
        _run(pw, bias, src, n * oh * ow, oh * ow, out_strides, out, force)
    # keep x alive until the C calls are done
    del x


def matmul_acc(a: npt.NDArray[np.integer], pw: PackedWeights, bias: npt.NDArray[np.int64],
               *, offset: int = 0, out: npt.NDArray[np.int64] | None = None,
               force: bool = False, quads: bool = True,
               requant: Float64Requant | None = None) -> npt.NDArray[np.int64]:
    """``out[q, m] = bias[m] + Σ_k (a[q, k] − offset)·w[m, k]`` modulo 2^32 (int64 values
    sign-extended from int32; ``out`` may also be int32 or float64) for ``a[Q, K]`` (any
    strides); returns ``out[Q, M]``. With 8-bit ``a`` and weights packed as byte quads the
    byte-quad kernel runs (same result; ``quads=False`` keeps the pair kernel).
    ``requant``: also write the requantized codes of ``out`` (as int32 registers) into
    ``requant.codes`` while each tile is in registers (needs ``pw.cols``)."""
    a = _source(np.asarray(a))
    q, k = a.shape
    if pw.k != k:
        raise HwsimError(f"matmul: packed weights have K = {pw.k}, the operand has {k}")
    if out is None:
        out = np.empty((q, pw.rows), dtype=np.int64)
    item = a.itemsize
    src = _BSource(src=a.ctypes.data, type=_TYPES[a.dtype], is_conv=0,
                   sk=a.strides[1] // item, sq=a.strides[0] // item, offset=int(offset),
                   pad_value=0, K=k)
    if pw.cols is None or out.shape != (q, pw.rows) or not out.flags.c_contiguous:
        if requant is not None:
            raise HwsimError("matmul: a fused requantization needs matrix-packed weights "
                             "and a C-contiguous [Q, M] output")
        _run(pw, bias, src, q, max(q, 1), (0, 1, pw.rows), out, force)
        return out
    # rows of a broadcast, the weights as the vector operand: whole output rows per tile
    b = _check_run(pw, bias, out, force)
    n_threads = threads() if q * pw.rows * pw.k >= _MIN_MACS_PER_CALL_THREADS else 1
    words, units, quad = pw.cols, pw.k2, 0
    lo = _byte_window(a.dtype, offset)
    if quads and pw.quads is not None and lo is not None:
        # a − offset lies in [lo, lo + 255]: the kernel reads u = a − offset − lo ∈ [0, 255]
        # and the bias gains lo·Σ_k w
        b = _shifted_bias(b, lo, pw.colsum)
        src.offset = int(offset) + lo
        words, units, quad = pw.quads, pw.quads.shape[1], 1
    rq = _Requant()
    if requant is not None:
        scales = np.ascontiguousarray(requant.scales, dtype=np.float64)
        codes = requant.codes
        if (scales.shape != (pw.rows,) or codes.shape != (q, pw.rows)
                or not codes.flags.c_contiguous or codes.dtype not in _CODE_TYPES):
            raise HwsimError(f"matmul: fused requantization needs {pw.rows} scales and "
                             f"C-contiguous int64/int8/uint8 codes of shape {(q, pw.rows)}")
        rq = _Requant(scale=scales.ctypes.data, rounding=_ROUNDINGS[requant.rounding],
                      z=float(requant.zero_point), lo=float(requant.act_min),
                      hi=float(requant.act_max), codes=codes.ctypes.data,
                      code_type=_CODE_TYPES[codes.dtype])
    rc = _LIB.hw_igemm_rows(words.ctypes.data, pw.rows, units, quad, b.ctypes.data,
                            ctypes.byref(src), q, n_threads, pw.rows, out.ctypes.data,
                            _OUT_TYPES[out.dtype], ctypes.byref(rq))
    if rc != 0:
        raise MemoryError("integer product kernel: out of memory for a packing block")
    return out

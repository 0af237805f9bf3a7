"""Lowering of MAC layers to GEMMs (specs/cycle_model.md §C1).

conv → one GEMM per group over the im2col matrix (padding = input zero point, K ordered
(input channel within the group, kh, kw) row-major, M ordered (batch, oh, ow));
depthwise conv is the ``group = C_in`` case; gemm/matmul → the GEMM itself. Other ops run on
the vector unit at ``⌈max(input, output elements)/C⌉`` cycles (:func:`vector_cycles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hwsim.exact.im2col import check_conv_groups, conv_columns, conv_out_size
from hwsim.exact.matmul import max_abs

__all__ = ["GemmOperands", "conv_out_size", "im2col", "lower_conv", "lower_gemm",
           "assemble_conv", "vector_cycles"]


@dataclass(frozen=True)
class GemmOperands:
    """``Y = bias + a @ w``: ``a[M, K]`` activation codes (int32 or int64), ``w[K, N]``
    weight codes, ``bias[N]`` folded int32 bias, ``input_bytes`` the unique input bytes it
    reads (§C6), ``a_range`` the (min, max) of ``a`` when known without scanning it."""

    a: npt.NDArray[np.integer]
    w: npt.NDArray[np.int64]
    bias: npt.NDArray[np.int64]
    input_elements: int
    a_range: tuple[int, int] | None = None


def im2col(
    x: npt.NDArray[np.integer],
    kh: int,
    kw: int,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    zero_point: int,
) -> tuple[npt.NDArray[np.int64], int, int]:
    """Patches of NCHW ``x``: ``[N·OH·OW, C·kh·kw]`` (rows (n, oh, ow), columns (c, kh, kw),
    both row-major), padding filled with ``zero_point``; returns (A, OH, OW). ``pads`` =
    (top, left, bottom, right) as in ONNX. ``A`` is the transposed view of the channel-major
    patch matrix of :func:`hwsim.exact.im2col.conv_columns` (one copy), int32 when every
    code and the zero point fit (always for the ≤ 16-bit activation formats), else int64."""
    x = np.asarray(x)
    wide = max(max_abs(x), abs(int(zero_point))) >= 1 << 31
    cols, oh, ow = conv_columns(x, (kh, kw), strides, pads, dilations, zero_point,
                                np.int64 if wide else np.int32)
    return cols.T, oh, ow


def lower_conv(
    x: npt.NDArray[np.integer],
    w: npt.NDArray[np.integer],
    bias: npt.NDArray[np.integer],
    *,
    x_zero_point: int,
    strides: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilations: tuple[int, int] = (1, 1),
    group: int = 1,
) -> tuple[list[GemmOperands], tuple[int, int, int, int]]:
    """One :class:`GemmOperands` per group of the conv ``x[N, C, H, W] * w[M, C/g, kh, kw]``
    and the output shape ``(N, M, OH, OW)``. The patches of all groups are built at once;
    group ``g``'s ``a`` is a view of its columns, ``w`` a transposed view of its weights."""
    x = np.asarray(x)
    w = np.asarray(w, dtype=np.int64)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    check_conv_groups(x.shape, w.shape, group)
    mg = m // group
    kg = cg * kh * kw
    b = np.asarray(bias, dtype=np.int64)
    a_all, oh, ow = im2col(x, kh, kw, strides, pads, dilations, x_zero_point)
    gemms = []
    for g in range(group):
        wmat = w[g * mg:(g + 1) * mg].reshape(mg, kg).T
        part = x[:, g * cg:(g + 1) * cg]
        vals = [int(part.min()), int(part.max())] if part.size else []
        if any(pads):  # padding positions hold the zero point
            vals.append(int(x_zero_point))
        a_range = (min(vals), max(vals)) if vals else None
        gemms.append(GemmOperands(a_all[:, g * kg:(g + 1) * kg], wmat,
                                  b[g * mg:(g + 1) * mg], n * cg * h * wd, a_range))
    return gemms, (n, m, oh, ow)


def assemble_conv(outputs: list[npt.NDArray[np.int64]], out_shape: tuple[int, int, int, int]
                  ) -> npt.NDArray[np.int64]:
    """Per-group GEMM results ``[N·OH·OW, M/g]`` back to NCHW ``[N, M, OH, OW]``."""
    n, m, oh, ow = out_shape
    y = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)
    return np.ascontiguousarray(y.reshape(n, oh, ow, m).transpose(0, 3, 1, 2))


def lower_gemm(x: npt.NDArray[np.integer], w_mk: npt.NDArray[np.integer],
               bias: npt.NDArray[np.integer]) -> GemmOperands:
    """``y = x·wᵀ + bias`` with ``x[B, K]`` and ``w_mk[M, K]`` (the integer graph's layout)."""
    x = np.asarray(x, dtype=np.int64)
    return GemmOperands(x, np.asarray(w_mk, dtype=np.int64).T,
                        np.asarray(bias, dtype=np.int64), int(x.size))


def vector_cycles(elements: int, cols: int) -> int:
    """Vector-unit cost of a non-MAC op: ``⌈elements/C⌉`` (§C1), ``elements`` the larger of
    its largest input and its output (each of the ``C`` lanes handles one element a cycle)."""
    return -(-int(elements) // int(cols))

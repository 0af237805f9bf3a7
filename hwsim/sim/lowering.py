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

from hwsim.errors import HwsimError

__all__ = ["GemmOperands", "conv_out_size", "im2col", "lower_conv", "lower_gemm",
           "assemble_conv", "vector_cycles"]


@dataclass(frozen=True)
class GemmOperands:
    """``Y = bias + a @ w``: ``a[M, K]`` activation codes, ``w[K, N]`` weight codes,
    ``bias[N]`` folded int32 bias, ``input_bytes`` the unique input bytes it reads (§C6)."""

    a: npt.NDArray[np.int64]
    w: npt.NDArray[np.int64]
    bias: npt.NDArray[np.int64]
    input_elements: int


def conv_out_size(size: int, k: int, stride: int, pad_begin: int, pad_end: int,
                  dilation: int) -> int:
    """Output length along one axis: ``(size + pads − dilation·(k−1) − 1) // stride + 1``."""
    return (size + pad_begin + pad_end - dilation * (k - 1) - 1) // stride + 1


def im2col(
    x: npt.NDArray[np.integer],
    kh: int,
    kw: int,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    zero_point: int,
) -> tuple[npt.NDArray[np.int64], int, int]:
    """Patches of NCHW ``x``: ``[N·OH·OW, C·kh·kw]`` int64 (rows (n, oh, ow), columns
    (c, kh, kw), both row-major), padding filled with ``zero_point``; returns (A, OH, OW).
    ``pads`` = (top, left, bottom, right) as in ONNX."""
    x = np.asarray(x, dtype=np.int64)
    n, c, h, wd = x.shape
    top, left, bottom, right = pads
    sh, sw = strides
    dh, dw = dilations
    oh = conv_out_size(h, kh, sh, top, bottom, dh)
    ow = conv_out_size(wd, kw, sw, left, right, dw)
    if oh < 1 or ow < 1:
        raise HwsimError(f"conv: kernel {kh}x{kw} does not fit the padded {h}x{wd} input")
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=zero_point)
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                     j * dw: j * dw + sw * (ow - 1) + 1: sw]
            cols[:, :, :, :, i, j] = win.transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * kh * kw), oh, ow


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
    and the output shape ``(N, M, OH, OW)``."""
    x = np.asarray(x)
    w = np.asarray(w, dtype=np.int64)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    if group < 1 or c % group or m % group or cg != c // group:
        raise HwsimError(
            f"conv: group {group} does not divide input channels {c} / output channels {m} "
            f"with weight shape {tuple(w.shape)}"
        )
    mg = m // group
    b = np.asarray(bias, dtype=np.int64)
    gemms = []
    oh = ow = 0
    for g in range(group):
        a, oh, ow = im2col(x[:, g * cg:(g + 1) * cg], kh, kw, strides, pads, dilations,
                           x_zero_point)
        wmat = w[g * mg:(g + 1) * mg].reshape(mg, cg * kh * kw).T
        gemms.append(GemmOperands(a, np.ascontiguousarray(wmat), b[g * mg:(g + 1) * mg],
                                  n * cg * h * wd))
    return gemms, (n, m, oh, ow)


def assemble_conv(outputs: list[npt.NDArray[np.int64]], out_shape: tuple[int, int, int, int]
                  ) -> npt.NDArray[np.int64]:
    """Per-group GEMM results ``[N·OH·OW, M/g]`` back to NCHW ``[N, M, OH, OW]``."""
    n, m, oh, ow = out_shape
    y = np.concatenate(outputs, axis=1)
    return np.ascontiguousarray(y.reshape(n, oh, ow, m).transpose(0, 3, 1, 2))


def lower_gemm(x: npt.NDArray[np.integer], w_mk: npt.NDArray[np.integer],
               bias: npt.NDArray[np.integer]) -> GemmOperands:
    """``y = x·wᵀ + bias`` with ``x[B, K]`` and ``w_mk[M, K]`` (the integer graph's layout)."""
    x = np.asarray(x, dtype=np.int64)
    return GemmOperands(x, np.ascontiguousarray(np.asarray(w_mk, dtype=np.int64).T),
                        np.asarray(bias, dtype=np.int64), int(x.size))


def vector_cycles(elements: int, cols: int) -> int:
    """Vector-unit cost of a non-MAC op: ``⌈elements/C⌉`` (§C1), ``elements`` the larger of
    its largest input and its output (each of the ``C`` lanes handles one element a cycle)."""
    return -(-int(elements) // int(cols))

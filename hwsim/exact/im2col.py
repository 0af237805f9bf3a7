"""Convolution patches as one contiguous matrix, without a Python loop per output position.

:func:`conv_columns` returns the im2col matrix of an NCHW input in the layout that makes a
convolution a plain (batched over groups) matrix product whose result is already channel
major: rows ``k = (c, kh, kw)`` row-major — the §7.3 reduction order of the channels of one
group — and columns ``(n, oh, ow)``. Padding positions hold ``fill`` (the input zero point
for the integer model, 0.0 for centred values). One strided view (``as_strided``) over the
padded input is copied once into the output buffer.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from hwsim.errors import HwsimError

__all__ = ["check_conv_groups", "conv_out_size", "pad_input", "conv_columns"]


def check_conv_groups(x_shape: tuple[int, ...], w_shape: tuple[int, ...], group: int) -> None:
    """HwsimError unless ``group`` splits the conv ``x[N, C, H, W] * w[M, C/g, kh, kw]``:
    ``g ≥ 1`` divides ``C`` and ``M`` and the weights hold ``C/g`` input channels."""
    c, (m, cg) = x_shape[1], w_shape[:2]
    if group < 1 or c % group or m % group or cg != c // group:
        raise HwsimError(f"conv: group {group} does not divide input channels {c} / output "
                         f"channels {m} with weight shape {tuple(w_shape)}")


def conv_out_size(size: int, k: int, stride: int, pad_begin: int, pad_end: int,
                  dilation: int) -> int:
    """Output length along one axis (ceil_mode 0): ``(size + pads − d·(k−1) − 1) // s + 1``."""
    return (size + pad_begin + pad_end - dilation * (k - 1) - 1) // stride + 1


def pad_input(x: npt.NDArray, pads: tuple[int, int, int, int], fill: float | int,
              dtype: npt.DTypeLike) -> npt.NDArray:
    """``x[N, C, H, W]`` cast to ``dtype`` and padded in H, W (pads = top, left, bottom, right)
    with ``fill``, in one new contiguous buffer."""
    t, left, b, r = pads
    n, c, h, w = x.shape
    if not (t or left or b or r):
        return np.ascontiguousarray(x, dtype=dtype)
    xp = np.empty((n, c, h + t + b, w + left + r), dtype=dtype)
    xp[:, :, :t] = fill
    xp[:, :, t + h:] = fill
    xp[:, :, t:t + h, :left] = fill
    xp[:, :, t:t + h, left + w:] = fill
    xp[:, :, t:t + h, left:left + w] = x
    return xp


def conv_columns(x: npt.NDArray, kernel: tuple[int, int], strides: tuple[int, int],
                 pads: tuple[int, int, int, int], dilations: tuple[int, int],
                 fill: float | int, dtype: npt.DTypeLike) -> tuple[npt.NDArray, int, int]:
    """im2col of ``x[N, C, H, W]``: ``cols[C·KH·KW, N·OH·OW]`` of ``dtype`` (rows (c, kh, kw),
    columns (n, oh, ow), both row-major) and (OH, OW). A 1×1 kernel with unit strides and no
    padding needs no patches: the result is ``x`` itself, transposed to channel-major."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    n, c, h, w = x.shape
    oh = conv_out_size(h, kh, sh, pads[0], pads[2], dh)
    ow = conv_out_size(w, kw, sw, pads[1], pads[3], dw)
    if oh < 1 or ow < 1:
        raise HwsimError(f"conv: kernel {kh}x{kw} does not fit the padded {h}x{w} input")
    if kh == kw == sh == sw == 1 and not any(pads):
        xc = np.asarray(x, dtype=dtype)
        if n == 1:
            return np.ascontiguousarray(xc.reshape(c, h * w)), oh, ow
        return np.ascontiguousarray(xc.transpose(1, 0, 2, 3)).reshape(c, n * h * w), oh, ow
    xp = pad_input(x, pads, fill, dtype)
    s_n, s_c, s_h, s_w = xp.strides
    view = as_strided(xp, shape=(c, kh, kw, n, oh, ow),
                      strides=(s_c, dh * s_h, dw * s_w, s_n, sh * s_h, sw * s_w),
                      writeable=False)
    return np.ascontiguousarray(view).reshape(c * kh * kw, n * oh * ow), oh, ow

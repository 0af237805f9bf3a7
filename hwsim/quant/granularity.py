"""Granularity of quantization parameters (§4): per tensor, per axis, per block.

Every granularity is normalised to one *block shape* for a given tensor shape: the tensor is
tiled by blocks of that shape and each block has one (scale, zero point). The *grid* is the
full-rank shape ``tensor_shape // block_shape``. Stored parameter shapes follow ONNX:
``PerTensor`` -> ``()``, ``PerAxis(a)`` -> ``(shape[a],)``, ``PerBlock(a, b)`` -> the grid
(full rank, ``shape[a] // b`` along ``a``). quantize/dequantize/observers all go through
:func:`expand_params` and :func:`reduce_blocks`, so there is one code path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError

__all__ = [
    "Granularity",
    "PerAxis",
    "PerBlock",
    "PerTensor",
    "block_shape",
    "expand_params",
    "grid_shape",
    "normalize_axis",
    "param_shape",
    "reduce_blocks",
]


def _check_int(value: object, field: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{field} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{field} must be >= {minimum}, got {value}")
    return int(value)


@dataclass(frozen=True)
class PerTensor:
    """One scale and zero point for the whole tensor."""


@dataclass(frozen=True)
class PerAxis:
    """One scale and zero point per index along ``axis`` (e.g. output channel)."""

    axis: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", _check_int(self.axis, "PerAxis.axis"))


@dataclass(frozen=True)
class PerBlock:
    """One scale and zero point per ``block_size`` consecutive elements along ``axis``.

    ``block_size`` must divide the length of ``axis`` of the tensor it is applied to.
    """

    axis: int
    block_size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", _check_int(self.axis, "PerBlock.axis"))
        object.__setattr__(
            self, "block_size", _check_int(self.block_size, "PerBlock.block_size", minimum=1)
        )


Granularity = PerTensor | PerAxis | PerBlock


def normalize_axis(g: Granularity, ndim: int) -> int:
    """Axis of a PerAxis / PerBlock as an index in [0, ndim); ConfigError if out of range."""
    if isinstance(g, PerTensor):
        raise ConfigError("PerTensor has no axis")
    name = type(g).__name__
    if not -ndim <= g.axis < ndim:
        raise ConfigError(
            f"{name}.axis = {g.axis} is out of range for a tensor with {ndim} dimensions "
            f"(expected {-ndim} <= axis < {ndim})"
        )
    return g.axis % ndim


def block_shape(g: Granularity, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of one block of ``g`` on a tensor of ``shape`` (validates axis and block size)."""
    shape = tuple(int(n) for n in shape)
    if isinstance(g, PerTensor):
        return shape
    if not isinstance(g, (PerAxis, PerBlock)):
        raise ConfigError(
            f"granularity must be PerTensor(), PerAxis(axis) or PerBlock(axis, block_size), "
            f"got {g!r}"
        )
    axis = normalize_axis(g, len(shape))
    if isinstance(g, PerAxis):
        return tuple(1 if i == axis else n for i, n in enumerate(shape))
    if shape[axis] % g.block_size != 0:
        raise ConfigError(
            f"PerBlock.block_size = {g.block_size} does not divide the length {shape[axis]} "
            f"of axis {g.axis}"
        )
    return tuple(g.block_size if i == axis else 1 for i in range(len(shape)))


def grid_shape(g: Granularity, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Full-rank number of blocks per dimension: ``shape[i] // block_shape[i]``."""
    blk = block_shape(g, shape)
    return tuple(n // b if b else 0 for n, b in zip(shape, blk, strict=True))


def param_shape(g: Granularity, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Stored shape of scale / zero point for ``g`` on ``shape``: (), (C,) or the grid."""
    grid = grid_shape(g, shape)
    if isinstance(g, PerTensor):
        return ()
    if isinstance(g, PerAxis):
        return (grid[normalize_axis(g, len(shape))],)
    return grid


def expand_params(p: np.ndarray, g: Granularity, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast stored parameters ``p`` to an array of ``shape`` (one value per element).

    ``p`` must have shape ``param_shape(g, shape)``; raises ConfigError naming the field
    otherwise. The result may be a broadcast view.
    """
    p = np.asarray(p)
    shape = tuple(int(n) for n in shape)
    want = param_shape(g, shape)
    if p.shape != want:
        raise ConfigError(
            f"quantization parameter shape {p.shape} does not match {g!r} on a tensor of "
            f"shape {shape} (expected {want})"
        )
    grid = grid_shape(g, shape)
    blk = block_shape(g, shape)
    full = p.reshape(grid)
    for axis, (n_grid, b) in enumerate(zip(grid, blk, strict=True)):
        if n_grid > 1 and b > 1:
            full = np.repeat(full, b, axis=axis)
    return np.broadcast_to(full, shape)


def reduce_blocks(x: np.ndarray, g: Granularity, op: Callable[..., np.ndarray]) -> np.ndarray:
    """Reduce each block of ``x`` with ``op`` (e.g. ``np.min``) into the stored param shape."""
    x = np.asarray(x)
    grid = grid_shape(g, x.shape)
    blk = block_shape(g, x.shape)
    inter: list[int] = []
    for n_grid, b in zip(grid, blk, strict=True):
        inter.extend((n_grid, b))
    reduced = op(x.reshape(inter), axis=tuple(range(1, 2 * x.ndim, 2)))
    return np.asarray(reduced).reshape(param_shape(g, x.shape))

"""§4 granularity: one block-shape code path, checked against per-slice loops (tolerance 0)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwsim.quant import (
    PerAxis,
    PerBlock,
    PerTensor,
    QParams,
    QuantSpec,
    choose_qparams,
    dequantize,
    quantize,
)
from hwsim.quant.granularity import (
    block_shape,
    expand_params,
    grid_shape,
    param_shape,
    reduce_blocks,
)
from hwsim.quant.observers import dynamic_qparams

SHAPE = (4, 6, 8)


def test_block_shapes() -> None:
    """§4.2: normalisation to one block shape and the stored parameter shapes."""
    assert block_shape(PerTensor(), SHAPE) == (4, 6, 8)
    assert block_shape(PerAxis(1), SHAPE) == (4, 1, 8)
    assert block_shape(PerAxis(-1), SHAPE) == (4, 6, 1)
    assert block_shape(PerBlock(2, 4), SHAPE) == (1, 1, 4)
    assert grid_shape(PerBlock(2, 4), SHAPE) == (4, 6, 2)
    assert param_shape(PerTensor(), SHAPE) == ()
    assert param_shape(PerAxis(-2), SHAPE) == (6,)
    assert param_shape(PerBlock(0, 2), SHAPE) == (2, 6, 8)


def block_slices(g: object) -> list[tuple[tuple[slice, ...], tuple[int, ...]]]:
    """(slice of x, index into stored params) for every block, by explicit loops."""
    blk = block_shape(g, SHAPE)  # type: ignore[arg-type]
    grid = grid_shape(g, SHAPE)  # type: ignore[arg-type]
    out = []
    for idx in itertools.product(*(range(n) for n in grid)):
        sl = tuple(slice(i * b, (i + 1) * b) for i, b in zip(idx, blk, strict=True))
        if isinstance(g, PerTensor):
            pidx: tuple[int, ...] = ()
        elif isinstance(g, PerAxis):
            pidx = (idx[g.axis % 3],)
        else:
            pidx = idx
        out.append((sl, pidx))
    return out


GRANULARITIES = [
    PerTensor(),
    PerAxis(0),
    PerAxis(-1),
    PerBlock(2, 4),
    PerBlock(1, 3),
    PerBlock(0, 1),
]


@pytest.mark.parametrize("g", GRANULARITIES)
@pytest.mark.parametrize("dtype", ["int8", "uint4", "fp8_e4m3"])
def test_quantize_equals_per_block_loop(g: object, dtype: str) -> None:
    """§4.2: vectorised quantize/dequantize == quantizing each block alone with its own
    per-tensor QParams; dynamic_qparams == choose_qparams of each block's min / max."""
    rng = np.random.default_rng(5)
    x = rng.normal(0, 3, SHAPE).astype(np.float32)
    spec = QuantSpec(dtype, granularity=g)  # type: ignore[arg-type]
    qp = dynamic_qparams(x, spec)
    q = quantize(x, qp)
    d = dequantize(q, qp)
    tensor_spec = QuantSpec(dtype)
    for sl, pidx in block_slices(g):
        block = x[sl]
        one = choose_qparams(float(block.min()), float(block.max()), tensor_spec)
        assert qp.scale[pidx] == one.scale and qp.zero_point[pidx] == one.zero_point
        np.testing.assert_array_equal(q[sl], quantize(block, one))
        np.testing.assert_array_equal(d[sl], dequantize(quantize(block, one), one))


@pytest.mark.parametrize("g", GRANULARITIES)
def test_reduce_and_expand_equal_loops(g: object) -> None:
    """§4.2: reduce_blocks / expand_params against the explicit block loop."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=SHAPE)
    r = reduce_blocks(x, g, np.max)  # type: ignore[arg-type]
    e = expand_params(r, g, SHAPE)  # type: ignore[arg-type]
    for sl, pidx in block_slices(g):
        assert r[pidx] == x[sl].max()
        assert np.all(e[sl] == x[sl].max())


def test_granularity_validation() -> None:
    """§4.3: axis out of range, block size not dividing the axis, bad fields -> ValueError."""
    x = np.zeros(SHAPE, dtype=np.float32)
    with pytest.raises(ValueError, match=r"PerAxis\.axis = 3 is out of range"):
        dynamic_qparams(x, QuantSpec("int8", granularity=PerAxis(3)))
    with pytest.raises(ValueError, match=r"PerAxis\.axis = -4 is out of range"):
        dynamic_qparams(x, QuantSpec("int8", granularity=PerAxis(-4)))
    with pytest.raises(ValueError, match=r"PerBlock\.block_size = 5 does not divide the length 8"):
        dynamic_qparams(x, QuantSpec("int8", granularity=PerBlock(2, 5)))
    with pytest.raises(ValueError, match=r"PerBlock\.block_size must be >= 1"):
        PerBlock(0, 0)
    with pytest.raises(ValueError, match=r"PerAxis\.axis must be an int"):
        PerAxis(1.5)  # type: ignore[arg-type]
    qp = QParams(
        np.ones(6, np.float32), np.zeros(6, np.int64), QuantSpec("int8", granularity=PerAxis(1))
    )
    with pytest.raises(ValueError, match=r"parameter shape \(6,\) does not match PerAxis"):
        quantize(np.zeros((4, 5)), qp)
    with pytest.raises(ValueError, match=r"PerAxis\.axis = 1 is out of range"):
        quantize(np.zeros(6), qp)
    qb = QParams(
        np.ones((4, 6, 2), np.float32),
        np.zeros((4, 6, 2), np.int64),
        QuantSpec("int8", granularity=PerBlock(2, 3)),
    )
    with pytest.raises(ValueError, match=r"PerBlock\.block_size = 3 does not divide"):
        quantize(x, qb)

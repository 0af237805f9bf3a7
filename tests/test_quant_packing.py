"""§5 int4 packing: two's-complement nibbles, element 2i in the low nibble of byte i."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.quant import pack_int4, unpack_int4


def reference_pack(values: list[int]) -> bytes:
    """Pure-Python statement of §5.1, byte by byte."""
    out = bytearray()
    for i in range(0, len(values), 2):
        lo = values[i] & 0xF
        hi = values[i + 1] & 0xF if i + 1 < len(values) else 0
        out.append(lo | (hi << 4))
    return bytes(out)


def test_all_16_values_round_trip_and_layout() -> None:
    """§5.1: every int4 value in both nibble positions; layout equals the byte-wise reference."""
    vals = np.arange(-8, 8, dtype=np.int8)
    pairs = np.stack(np.meshgrid(vals, vals, indexing="ij"), axis=-1).reshape(-1)
    packed = pack_int4(pairs)
    assert packed.dtype == np.uint8 and packed.size == 256
    assert packed.tobytes() == reference_pack(pairs.tolist())
    assert sorted(packed.tolist()) == list(range(256))
    np.testing.assert_array_equal(unpack_int4(packed, pairs.size), pairs)


def test_worked_example() -> None:
    """§5.1 worked example: [1, -2, 7] -> [0xE1, 0x07]."""
    assert pack_int4(np.array([1, -2, 7])).tolist() == [0xE1, 0x07]
    assert unpack_int4(np.array([0xE1, 0x07], dtype=np.uint8), 3).tolist() == [1, -2, 7]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 1001, 4096])
def test_random_round_trip_odd_and_even(n: int) -> None:
    """§5.1/§5.2: random arrays of odd and even length round-trip; odd length pads with 0."""
    rng = np.random.default_rng(n)
    q = rng.integers(-8, 8, n).astype(np.int8)
    packed = pack_int4(q)
    assert packed.size == (n + 1) // 2
    assert packed.tobytes() == reference_pack(q.tolist())
    if n % 2:
        assert packed[-1] >> 4 == 0
    np.testing.assert_array_equal(unpack_int4(packed, n), q)


def test_invalid_inputs() -> None:
    """§5: codes outside [-8, 7], wrong byte count, wrong dtype raise ValueError."""
    with pytest.raises(ValueError, match=r"q must hold int4 codes in \[-8, 7\]"):
        pack_int4(np.array([8]))
    with pytest.raises(ValueError, match="q must be an integer array"):
        pack_int4(np.array([0.5]))
    with pytest.raises(ValueError, match="packed must hold"):
        unpack_int4(np.zeros(2, dtype=np.uint8), 5)
    with pytest.raises(ValueError, match="packed must be a uint8"):
        unpack_int4(np.zeros(2, dtype=np.int8), 4)

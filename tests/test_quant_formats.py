"""§1 integer formats and the QuantSpec fields (§1, §3.7 validation)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.quant import IntFormat, PerAxis, QuantSpec, int_format, storage_dtype
from hwsim.quant.formats import QUANT_DTYPES


@pytest.mark.parametrize("bits", range(2, 17))
@pytest.mark.parametrize("signed", [True, False])
def test_ranges_match_numpy_integer_limits(bits: int, signed: bool) -> None:
    """§1.1: qmin/qmax equal the limits of the b-bit integer (differential: two's complement)."""
    f = IntFormat(bits, signed)
    codes = np.arange(2**bits, dtype=np.int64)
    values = np.where(codes >= 2 ** (bits - 1), codes - 2**bits, codes) if signed else codes
    assert (f.qmin, f.qmax) == (int(values.min()), int(values.max()))
    assert f.name == ("int" if signed else "uint") + str(bits)
    assert int_format(f.name) == f
    info = np.iinfo(f.storage)
    assert info.min <= f.qmin and f.qmax <= info.max
    assert f.storage.itemsize == (1 if bits <= 8 else 2)
    assert storage_dtype(f.name) == f.storage


def test_narrow_range_drops_most_negative_code() -> None:
    """§1.2: narrow range int8 is [-127, 127]; uint8 is [1, 255]."""
    assert IntFormat(8, True).qmin_narrow(True) == -127
    assert QuantSpec("int8", narrow_range=True).qmin == -127
    assert QuantSpec("uint8", narrow_range=True).qmin == 1
    assert QuantSpec("int4").qmin == -8 and QuantSpec("int4").qmax == 7


def test_storage_dtype_of_fp8_is_uint8() -> None:
    """§1.3: fp8 codes are stored as uint8."""
    assert storage_dtype("fp8_e4m3") == np.uint8
    assert len(QUANT_DTYPES) == 32


@pytest.mark.parametrize("bits", [0, 1, 17, 32])
def test_bits_out_of_range_rejected(bits: int) -> None:
    """§1.1: bits 0, 1, 17 ... raise a ValueError naming the field."""
    with pytest.raises(ValueError, match=r"IntFormat\.bits must be in \[2, 16\]"):
        IntFormat(bits, True)


def test_bad_names_and_types_rejected() -> None:
    """§1.1 / §3.7: unknown dtype names, non-bool flags, bad rounding."""
    with pytest.raises(ConfigError, match="integer format name"):
        int_format("int")
    with pytest.raises(ConfigError, match=r"IntFormat\.bits must be in"):
        int_format("int17")
    with pytest.raises(ValueError, match=r"QuantSpec\.dtype must be one of"):
        QuantSpec("int17")
    with pytest.raises(ValueError, match=r"QuantSpec\.dtype must be one of"):
        QuantSpec("float16")
    with pytest.raises(ValueError, match=r"QuantSpec\.symmetric must be a bool"):
        QuantSpec("int8", symmetric=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"QuantSpec\.rounding must be one of"):
        QuantSpec("int8", rounding="stochastic")
    with pytest.raises(ValueError, match=r"QuantSpec\.granularity must be"):
        QuantSpec("int8", granularity="per_channel")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"IntFormat\.signed must be a bool"):
        IntFormat(8, "yes")  # type: ignore[arg-type]


def test_fp8_spec_restrictions() -> None:
    """§3.5: fp8 has no narrow range and rounds half to even only."""
    with pytest.raises(ValueError, match=r"QuantSpec\.narrow_range"):
        QuantSpec("fp8_e4m3", narrow_range=True)
    with pytest.raises(ValueError, match=r"QuantSpec\.rounding must be 'half_even'"):
        QuantSpec("fp8_e5m2", rounding="floor")
    spec = QuantSpec("fp8_e5m2", granularity=PerAxis(0))
    assert spec.is_fp8 and spec.fp8_format.max_finite == 57344.0
    with pytest.raises(ConfigError, match="not an integer format"):
        _ = spec.qmin

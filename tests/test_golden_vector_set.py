"""vectors.md §6: the golden-vector set committed for the RTL tests still verifies: hashes,
hex == npz, recomputed accumulators / outputs, and regeneration from the recorded model and
array (so a change that alters the vectors is caught here, with the command to rewrite them
in tests/rtl/golden/README.md)."""

from __future__ import annotations

from pathlib import Path

from hwsim.vectors import check_vectors, layer_names

GOLDEN_SET = Path(__file__).parent / "rtl" / "golden" / "digits_4x3"


def test_committed_rtl_vector_set_verifies() -> None:
    assert layer_names(GOLDEN_SET) == ["stem.conv", "dw.conv", "pw.conv", "fc"]
    assert check_vectors(GOLDEN_SET, regenerate=True) == []

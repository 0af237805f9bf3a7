"""Reference executors: float32 (:mod:`hwsim.reference.float_exec`), float64 fake-quant
(:mod:`hwsim.reference.fakequant_exec`) and the integer golden model
(:mod:`hwsim.reference.golden_exec`, kernels in :mod:`hwsim.reference.golden_ops`).

Import the submodules directly; this package imports nothing so that the float executor
does not pull in the integer stack.
"""

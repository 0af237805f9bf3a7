"""The quantizing compiler: float IR -> integer graph (specs/compiler.md).

Submodules: :mod:`~hwsim.compiler.qgraph` (the integer graph data model and
``verify_qgraph``), :mod:`~hwsim.compiler.calibrate` (observers over a calibration set),
:mod:`~hwsim.compiler.fold` (activation fusion), :mod:`~hwsim.compiler.quantize` (static and
dynamic post-training quantization), :mod:`~hwsim.compiler.requant` (requant parameters of
nodes), :mod:`~hwsim.compiler.dynamic` (per-input qparams), :mod:`~hwsim.compiler.serialize`
(JSON + NPZ). Import the submodules directly.
"""

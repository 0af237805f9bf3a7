"""Model importers into the float IR (:mod:`hwsim.ir`), and the ONNX exporter."""

from hwsim.frontends.onnx import load_onnx
from hwsim.frontends.onnx_export import save_onnx, to_onnx

__all__ = ["load_onnx", "save_onnx", "to_onnx"]

"""hwsim: a bit-exact simulator and emulator of fixed-point DNN accelerators."""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""Build script for hwsim's one C extension (the metadata lives in pyproject.toml).

``hwsim.exact._igemm`` holds the exact 16-bit integer product kernels (specs/arithmetic.md
§7.5). It is optional: when it cannot be compiled, hwsim uses its float BLAS path (§7.4).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hwsim.exact._igemm",
            sources=["hwsim/exact/_igemm.c"],
            extra_compile_args=["-O3", "-std=c11"],
            libraries=["m"],
            optional=True,
        )
    ]
)

"""Compile: sympy expressions into numba kernels, losses into compiled objects.

==========================  ================================================================
:mod:`bea.compile.codegen`  expression → numba kernel source, cse, disk and memory caches
:mod:`bea.compile.loss`     :class:`~bea.compile.loss.CompiledLoss` (E, ∇E, ∇²E, T(u, v) kernels)
:mod:`bea.compile.data`     data losses (mean over rows of a per-sample expression, kernels loop)
==========================  ================================================================

The package's public names are re-exported by :mod:`bea`; this ``__init__`` imports nothing, so
importing one module of the package never pulls in the others.
"""

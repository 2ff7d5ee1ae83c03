"""Derive: the modified equations of an optimiser, in exact arithmetic (sympy, fractions).

=========================  ===================================================================
:mod:`bea.derive.trees`    rooted trees and their primitives (σ, γ, canonical forms, splits)
:mod:`bea.derive.methods`  the one-step methods as data (Runge–Kutta, multistep, momentum)
:mod:`bea.derive.series`   the loss-independent modified series (B-series algebra, notation)
:mod:`bea.derive.differentials`  a series evaluated on a concrete sympy loss (elementary differentials)
:mod:`bea.derive.symbolic`  :func:`~bea.derive.symbolic.modified_field` for a concrete loss
:mod:`bea.derive.momentum`  heavy-ball momentum on its slow manifold
:mod:`bea.derive.maps`     any smooth one-step map, compositions (SGD epochs)
:mod:`bea.derive.optimizers`  Nesterov, RMSProp, Adam through :mod:`bea.derive.maps`
=========================  ===================================================================

The package's public names are re-exported by :mod:`bea`; this ``__init__`` imports nothing, so
importing one module of the package never pulls in the others.
"""

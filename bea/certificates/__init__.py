"""Certify: bounds on the distance between GD and a flow (Elkabetz & Cohen's theorem, made rigorous).

===================================  ========================================================
:mod:`bea.certificates.intervals`    interval / ball arithmetic (python-flint arb, compiled cores)
:mod:`bea.certificates.rigorous`     validated enclosures of E's derivatives, the GF and GD over boxes
:mod:`bea.certificates.tube`         the bound recursion and the tube-radius search (numpy and torch)
:mod:`bea.certificates.certify`      :func:`~bea.certificates.certify.certify`, :func:`~bea.certificates.certify.max_step`
                                     and their result objects
===================================  ========================================================

The package is *certificates*, not *certify*: ``bea.certify`` is the function, and a package of that
name would make ``import bea.certify.tube as t`` resolve ``bea.certify`` to the function.  The
former module path ``bea.certify`` (``from bea.certify import Certificate``) is
:mod:`bea.certificates.certify`.  This ``__init__`` imports nothing.
"""

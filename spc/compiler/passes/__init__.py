"""Graph -> Graph passes. None mutates its input."""

from spc.compiler.passes.causality import Approximation, check_causality
from spc.compiler.passes.fold_batchnorm import fold_batchnorm
from spc.compiler.passes.lower import lower
from spc.compiler.passes.time_invariant import KernelApproximation, approximate_time_invariant

__all__ = ["Approximation", "KernelApproximation", "approximate_time_invariant", "check_causality", "fold_batchnorm", "lower"]

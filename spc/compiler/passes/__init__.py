"""Graph -> Graph passes. None mutates its input."""

from spc.compiler.passes.causality import Approximation, check_causality
from spc.compiler.passes.fold_batchnorm import fold_batchnorm
from spc.compiler.passes.lower import lower

__all__ = ["Approximation", "check_causality", "fold_batchnorm", "lower"]

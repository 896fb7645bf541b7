"""Search spaces: what can be built (layer 2). ``create_space("nb201", C=16, N=5)``."""

from budgetnas.spaces.base import Arch, BaseSpace, Cost, check_space, create_space, list_spaces, register_space
from budgetnas.spaces.nb201 import NB201_OPS, NB201Space

__all__ = [
    "Arch",
    "BaseSpace",
    "Cost",
    "NB201Space",
    "NB201_OPS",
    "check_space",
    "create_space",
    "list_spaces",
    "register_space",
]

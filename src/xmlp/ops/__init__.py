"""The hot operations of a training step: the portable Array API versions and the NumPy fast
paths behind one dispatch function, :func:`ops_for`."""

from .numpy_fast import NumpyOps, PortableOps, ops_for, set_fast_paths

__all__ = ["NumpyOps", "PortableOps", "ops_for", "set_fast_paths"]

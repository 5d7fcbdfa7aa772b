"""Parameter-efficient transfer-learning methods, one module per method plus a registry."""

from models.petl.registry import MethodSpec, get_method, method_names

__all__ = ["MethodSpec", "get_method", "method_names"]

"""Neural-network helpers (``wengert.nn.functional``)."""

from . import functional

__all__ = ["functional"]

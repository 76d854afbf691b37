"""Utilities: ``wengert.utils.data`` (datasets and batching)."""

from . import data

__all__ = ["data"]

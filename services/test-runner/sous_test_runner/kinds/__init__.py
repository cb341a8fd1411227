"""The registry of test kinds: each module of this package registers the kinds it defines.

A new kind is one module here that calls `register`; `load_all()` imports every module.
"""

from __future__ import annotations

import importlib
import pkgutil

from sous_test_runner.kinds.base import KINDS, Kind, TestContext, register

__all__ = ["KINDS", "Kind", "TestContext", "load_all", "register"]


def load_all() -> dict[str, Kind]:
    """Import every kind module of this package; return the registry."""
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
    return KINDS

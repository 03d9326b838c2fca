"""A module that fails on import, for the worker's import-error test."""

from __future__ import annotations

raise RuntimeError("this module is broken on purpose")

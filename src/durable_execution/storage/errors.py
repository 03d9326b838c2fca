"""Errors a storage backend raises that the executor and users may want to tell apart."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of errors raised by a storage backend."""


class DuplicateExecutionIdError(StorageError):
    """An insert used an ``execution_id`` that is already stored; nothing was inserted."""

    def __init__(self, execution_ids: list[str]) -> None:
        self.execution_ids = execution_ids
        super().__init__(f"Execution ids already exist: {', '.join(execution_ids)}")

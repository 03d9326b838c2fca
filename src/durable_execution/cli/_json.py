"""Executions as JSON for ``--json``: every stored field, inputs and outputs parsed.

Stored inputs and outputs are the serializer's text; when it is JSON (the default serializer's
always is) it is embedded as JSON, otherwise as the string it is.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from durable_execution._trees import ExecutionNode
from durable_execution.storage.types import TaskExecutionRecord

_STORED_VALUES = ("run_input", "run_output", "output")


def stored_value(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def record_json(record: TaskExecutionRecord) -> dict[str, object]:
    fields = dataclasses.asdict(record)
    for name in _STORED_VALUES:
        fields[name] = stored_value(fields[name])
    return fields


def tree_json(node: ExecutionNode) -> dict[str, object]:
    return {
        **record_json(node.record),
        "children": [tree_json(child) for child in node.children],
        "finalize": None if node.finalize is None else tree_json(node.finalize),
        "missing": [dataclasses.asdict(ref) for ref in node.missing],
        "unreadable": [
            {"execution_id": error.execution_id, "unreadable": str(error)}
            for error in node.unreadable
        ],
    }


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(value: object) -> str:
    return json.dumps(value, default=_default, indent=2, ensure_ascii=False)

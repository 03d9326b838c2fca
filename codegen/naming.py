"""Python names for SQL things: methods, fields and classes, predictable like sqlc's Go names."""

from __future__ import annotations

import keyword
import re

# Words of a name: "GetTasksByIDs" -> Get, Tasks, By, IDs; "is_closed" -> is, closed.
# An all-caps run followed by a lone "s" is an acronym plural ("IDs"), not two words.
_WORD = re.compile(r"[A-Z]{2,}s(?![a-z])|[A-Z]+[0-9]*(?![a-z])|[A-Z]?[a-z]+[0-9]*|[0-9]+")


def words(name: str) -> list[str]:
    return _WORD.findall(name)


def snake_case(name: str) -> str:
    """``GetTasksByIDs`` -> ``get_tasks_by_ids``; a Python keyword gets a trailing ``_``."""
    result = "_".join(word.lower() for word in words(name))
    return result + "_" if keyword.iskeyword(result) else result


def upper_snake_case(name: str) -> str:
    return "_".join(word.upper() for word in words(name))


def camel_case(name: str) -> str:
    """``get_by_ids`` -> ``GetByIds``; words already capitalised keep their case (``IDs``)."""
    return "".join(word[0].upper() + word[1:] for word in words(name))


def singular(word: str) -> str:
    """English singular of a table name's last word, for the common plural endings only."""
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 4:
        return word[:-3] + ("Y" if word[-3].isupper() else "y")
    if lower.endswith(("sses", "shes", "ches", "xes", "uses")):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def table_class_name(table: str, schema: str = "") -> str:
    """``durable_task_executions`` -> ``DurableTaskExecution`` (schema-qualified if given)."""
    parts = words(table)
    if not parts:
        return ""
    parts[-1] = singular(parts[-1])
    prefix = camel_case(schema) if schema else ""
    return prefix + "".join(word[0].upper() + word[1:] for word in parts)


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``… if taken; records the result in ``taken``."""
    candidate = name
    counter = 2
    while candidate in taken:
        candidate = f"{name}_{counter}"
        counter += 1
    taken.add(candidate)
    return candidate

"""The values the library itself builds and hands to task code or returns as outputs.

They sit below both the serializer (which must round-trip them) and the task definitions (which
use them in their signatures), so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

InputT_co = TypeVar("InputT_co", covariant=True)
OutputT_co = TypeVar("OutputT_co", covariant=True)


@dataclass(frozen=True, slots=True)
class ChildTaskOutput:
    """The output of the child at ``index`` of a parent's children.

    Children are heterogeneous (each may be a different task), so ``output`` is ``object``.
    """

    index: int
    task_id: str
    execution_id: str
    output: object


def _as_sorted_tuple(outputs: Sequence[ChildTaskOutput]) -> tuple[ChildTaskOutput, ...]:
    return tuple(sorted(outputs, key=lambda child: child.index))


# No slots: with slots, a frozen generic dataclass cannot be instantiated as Cls[T](...).
@dataclass(frozen=True)
class ParentTaskOutput(Generic[OutputT_co]):
    """What a parent task without a finalize task outputs: its own output plus its children's."""

    output: OutputT_co
    children_tasks_outputs: Sequence[ChildTaskOutput] = ()

    def __post_init__(self) -> None:
        # Stored as an index-ordered tuple so that values compare equal however they were built.
        object.__setattr__(
            self, "children_tasks_outputs", _as_sorted_tuple(self.children_tasks_outputs)
        )


# No slots: with slots, a frozen generic dataclass cannot be instantiated as Cls[T](...).
@dataclass(frozen=True)
class FinalizeTaskInput(Generic[InputT_co, OutputT_co]):
    """What a finalize task receives: the parent's input and output and its children's outputs."""

    input: InputT_co
    output: OutputT_co
    children_tasks_outputs: Sequence[ChildTaskOutput] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "children_tasks_outputs", _as_sorted_tuple(self.children_tasks_outputs)
        )

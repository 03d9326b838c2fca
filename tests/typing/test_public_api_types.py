# ruff: noqa: E501 - expectation markers must stay on the line they describe, however long
"""Type tests: ``mypy --strict`` on small programs that use the public API.

Each snippet marks what mypy must say about a line with a trailing comment:
``# E[<code>]: <text>`` for an error with that error code whose message contains ``<text>``,
``# N: <text>`` for a note (``reveal_type``). A line without a marker must produce nothing. All snippets are checked in one mypy run (the
expensive part is analysing the library once), then each test compares one snippet's output.

The snippets live in this file as strings, not as ``.py`` files, so that the repository-wide
``mypy``/``ruff`` runs never see the deliberately wrong ones.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Final

import pytest
from mypy import api as mypy_api

SRC_DIR: Final = Path(__file__).resolve().parents[2] / "src"


def _snippets(module: str, name: str) -> dict[str, str]:
    """Snippets kept in a sibling file (loaded by path: ``tests/typing`` has no ``__init__``,
    since a package named ``typing`` would shadow the standard library's)."""
    path = Path(__file__).with_name(f"{module}.py")
    spec = importlib.util.spec_from_file_location(f"_typing_tests_{module}", path)
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    snippets = getattr(loaded, name)
    assert isinstance(snippets, dict)
    return {str(key): str(value) for key, value in snippets.items()}


STORABLE_CORRECT: Final = _snippets("storable_snippets", "CORRECT")
STORABLE_MISUSES: Final = _snippets("storable_snippets", "MISUSES")

SNIPPETS: Final[dict[str, str]] = {
    # --- correct programs: mypy must accept them, with exactly these revealed types ------------
    "simple_task_and_narrowing": """
        from durable_execution import DurableExecutor, InMemoryStorage, TaskContext

        def run(ctx: TaskContext, name: str) -> int:
            return len(name)

        async def main() -> None:
            executor = DurableExecutor(InMemoryStorage())
            task = executor.task(id="t", timeout_ms=1000, run=run)
            reveal_type(task)  # N: Revealed type is "durable_execution.tasks.Task[str, int]"
            handle = await executor.enqueue_task(task, "x")
            reveal_type(handle)  # N: Revealed type is "durable_execution.handle.TaskHandle[int]"
            execution = await handle.wait_and_get_finished_execution(timeout_ms=1000)
            if execution.status == "completed":
                reveal_type(execution.output)  # N: Revealed type is "int"
                total: int = execution.output + 1
            elif execution.status == "failed":
                message: str = execution.error.message
            elif execution.status == "children_tasks_failed":
                reveal_type(execution.children_tasks_errors)  # N: Revealed type is "tuple[durable_execution.model.ChildTaskError, ...]"
            current = await handle.get_execution()
            if current.status == "running":
                reveal_type(current.started_at)  # N: Revealed type is "datetime.datetime"
            if current.status == "cancelled":
                reveal_type(current.started_at)  # N: Revealed type is "datetime.datetime | None"
    """,
    "async_tasks_and_decorators": """
        from durable_execution import DurableExecutor, InMemoryStorage, TaskContext

        executor = DurableExecutor(InMemoryStorage())

        @executor.task(id="greet", timeout_ms=1000)
        async def greet(ctx: TaskContext, name: str) -> str:
            return f"Hello, {name}!"

        reveal_type(greet)  # N: Revealed type is "durable_execution.tasks.Task[str, str]"

        async def numbers(ctx: TaskContext, count: int) -> list[int]:
            return list(range(count))

        numbers_task = executor.task(id="numbers", timeout_ms=1000, run=numbers)
        reveal_type(numbers_task)  # N: Revealed type is "durable_execution.tasks.Task[int, list[int]]"

        def no_input(ctx: TaskContext, _: None) -> None:
            return None

        no_input_task = executor.task(id="no_input", timeout_ms=1000, run=no_input)

        async def main() -> None:
            await executor.enqueue_task(no_input_task)
            handle = await executor.enqueue_task(numbers_task, 3)
            execution = await handle.get_execution()
            if execution.status == "completed":
                reveal_type(execution.output)  # N: Revealed type is "list[int]"
    """,
    "parent_tasks": """
        from durable_execution import (
            ChildTask,
            DurableExecutor,
            FinalizeTask,
            FinalizeTaskInput,
            InMemoryStorage,
            ParentTaskResult,
            TaskContext,
        )

        executor = DurableExecutor(InMemoryStorage())

        def child_run(ctx: TaskContext, value: int) -> str:
            return str(value)

        child = executor.task(id="child", timeout_ms=1000, run=child_run)

        def run_parent(ctx: TaskContext, name: str) -> ParentTaskResult[int]:
            return ParentTaskResult(output=len(name), children_tasks=[ChildTask(child, 1)])

        plain = executor.parent_task(id="plain", timeout_ms=1000, run_parent=run_parent)
        reveal_type(plain)  # N: Revealed type is "durable_execution.tasks.Task[str, durable_execution.payloads.ParentTaskOutput[int]]"

        def finalize(ctx: TaskContext, fin: FinalizeTaskInput[str, int]) -> bool:
            return fin.output > len(fin.input)

        finalized = executor.parent_task(
            id="finalized",
            timeout_ms=1000,
            run_parent=run_parent,
            finalize_task=FinalizeTask(id="finalize", timeout_ms=1000, run=finalize),
        )
        reveal_type(finalized)  # N: Revealed type is "durable_execution.tasks.Task[str, bool]"

        def finalize_parent(
            ctx: TaskContext, fin: FinalizeTaskInput[str, int]
        ) -> ParentTaskResult[float]:
            return ParentTaskResult(output=1.5)

        def nested(
            ctx: TaskContext, fin: FinalizeTaskInput[FinalizeTaskInput[str, int], float]
        ) -> bytes:
            return b""

        deep = executor.parent_task(
            id="deep",
            timeout_ms=1000,
            run_parent=run_parent,
            finalize_task=FinalizeTask(
                id="deep_finalize",
                timeout_ms=1000,
                run_parent=finalize_parent,
                finalize_task=FinalizeTask(id="deep_nested", timeout_ms=1000, run=nested),
            ),
        )
        reveal_type(deep)  # N: Revealed type is "durable_execution.tasks.Task[str, bytes]"

        async def main() -> None:
            execution = await (await executor.enqueue_task(plain, "x")).get_execution()
            if execution.status == "completed":
                reveal_type(execution.output.output)  # N: Revealed type is "int"
                for child_output in execution.output.children_tasks_outputs:
                    reveal_type(child_output.output)  # N: Revealed type is "object"
    """,
    "sequential_chaining": """
        from durable_execution import DurableExecutor, InMemoryStorage, TaskContext

        executor = DurableExecutor(InMemoryStorage())

        def parse(ctx: TaskContext, text: str) -> int:
            return int(text)

        def is_even(ctx: TaskContext, value: int) -> bool:
            return value % 2 == 0

        def describe(ctx: TaskContext, flag: bool) -> list[str]:
            return ["even"] if flag else ["odd"]

        t1 = executor.task(id="parse", timeout_ms=1000, run=parse)
        t2 = executor.task(id="is_even", timeout_ms=1000, run=is_even)
        t3 = executor.task(id="describe", timeout_ms=1000, run=describe)
        chain = executor.sequential_tasks(t1, t2, t3)
        reveal_type(chain)  # N: Revealed type is "durable_execution.tasks.Task[str, list[str]]"
        reveal_type(executor.sequential_tasks(t1, t2))  # N: Revealed type is "durable_execution.tasks.Task[str, bool]"
        reveal_type(executor.sequential_tasks(t1, t2, t3, id="describe_chain"))  # N: Revealed type is "durable_execution.tasks.Task[str, list[str]]"
    """,
    "validated_inputs": """
        import pydantic

        from durable_execution import DurableExecutor, InMemoryStorage, TaskContext

        executor = DurableExecutor(InMemoryStorage())

        def to_int(value: str) -> int:
            return int(value)

        def run(ctx: TaskContext, value: int) -> float:
            return value / 2

        validated = executor.validate_input(to_int).task(id="validated", timeout_ms=1000, run=run)
        reveal_type(validated)  # N: Revealed type is "durable_execution.tasks.Task[str, float]"

        class Person(pydantic.BaseModel):
            name: str

        def greet(ctx: TaskContext, person: Person) -> str:
            return person.name

        schema = executor.input_schema(Person).task(id="schema", timeout_ms=1000, run=greet)
        reveal_type(schema)  # N: Revealed type is "durable_execution.tasks.Task[validated_inputs.Person, str]"
    """,
    # --- incorrect programs: mypy must refuse them, where marked ------------------------------
    "output_without_narrowing": """
        from durable_execution import DurableExecutor, InMemoryStorage, TaskContext

        def run(ctx: TaskContext, name: str) -> int:
            return len(name)

        async def main() -> None:
            executor = DurableExecutor(InMemoryStorage())
            task = executor.task(id="t", timeout_ms=1000, run=run)
            handle = await executor.enqueue_task(task, "x")
            execution = await handle.wait_and_get_finished_execution()
            print(execution.output)  # E[union-attr]: has no attribute "output"
            if execution.status == "failed":
                print(execution.output)  # E[attr-defined]: "FailedExecution" has no attribute "output"
            if execution.status == "completed":
                text: str = execution.output  # E[assignment]: Incompatible types in assignment (expression has type "int", variable has type "str")
    """,
    "wrong_enqueue_input": """
        from durable_execution import DurableExecutor, InMemoryStorage, TaskContext

        def run(ctx: TaskContext, name: str) -> int:
            return len(name)

        async def main() -> None:
            executor = DurableExecutor(InMemoryStorage())
            task = executor.task(id="t", timeout_ms=1000, run=run)
            await executor.enqueue_task(task, 5)  # E[misc]: "enqueue_task" of "DurableExecutor"
            await executor.enqueue_task(task)  # E[arg-type]: incompatible type "Task[str, int]"; expected "Task[None, int]"
    """,
    "sync_client_typed_like_the_async_api": """
        from durable_execution import DurableExecutor, InMemoryStorage, SyncClient, TaskContext

        def run(ctx: TaskContext, name: str) -> int:
            return len(name)

        def main() -> None:
            task = DurableExecutor(InMemoryStorage()).task(id="t", timeout_ms=1000, run=run)
            with SyncClient("sqlite:///app.db") as client:
                handle = client.enqueue_task(task, "x")
                reveal_type(handle)  # N: Revealed type is "durable_execution.sync_client.SyncTaskHandle[int]"
                reveal_type(client.enqueue_tasks(task, ["a", "b"]))  # N: Revealed type is "list[durable_execution.sync_client.SyncTaskHandle[int]]"
                execution = handle.wait_and_get_finished_execution(timeout_ms=1000)
                if execution.status == "completed":
                    reveal_type(execution.output)  # N: Revealed type is "int"
                by_id = client.get_execution(handle.execution_id)
                if by_id.status == "completed":
                    reveal_type(by_id.output)  # N: Revealed type is "object"
                again = client.get_task_handle(task, handle.execution_id)
                reveal_type(again)  # N: Revealed type is "durable_execution.sync_client.SyncTaskHandle[int]"
                cancelled: bool = client.cancel(handle.execution_id)
    """,
    "sync_client_wrong_input": """
        from durable_execution import DurableExecutor, InMemoryStorage, SyncClient, TaskContext

        def run(ctx: TaskContext, name: str) -> int:
            return len(name)

        def main() -> None:
            task = DurableExecutor(InMemoryStorage()).task(id="t", timeout_ms=1000, run=run)
            client = SyncClient("sqlite:///app.db")
            client.enqueue_task(task, 5)  # E[misc]: "enqueue_task" of "SyncClient"
            client.enqueue_task(task)  # E[arg-type]: incompatible type "Task[str, int]"; expected "Task[None, int]"
            client.enqueue_tasks(task, [5])  # E[misc]: "enqueue_tasks" of "SyncClient"
    """,
    "sequential_mismatch": """
        from durable_execution import DurableExecutor, InMemoryStorage, TaskContext

        executor = DurableExecutor(InMemoryStorage())

        def parse(ctx: TaskContext, text: str) -> int:
            return int(text)

        def shout(ctx: TaskContext, text: str) -> str:
            return text.upper()

        t1 = executor.task(id="parse", timeout_ms=1000, run=parse)
        t2 = executor.task(id="shout", timeout_ms=1000, run=shout)
        executor.sequential_tasks(t1, t2)  # E[misc]: "sequential_tasks" of "DurableExecutor"
        executor.sequential_tasks(t1, t2, id="named")  # E[misc]: "sequential_tasks" of "DurableExecutor"
    """,
    "child_and_finalize_mismatch": """
        from durable_execution import (
            ChildTask,
            DurableExecutor,
            FinalizeTask,
            FinalizeTaskInput,
            InMemoryStorage,
            ParentTaskResult,
            TaskContext,
        )

        executor = DurableExecutor(InMemoryStorage())

        def child_run(ctx: TaskContext, value: int) -> str:
            return str(value)

        child = executor.task(id="child", timeout_ms=1000, run=child_run)
        ChildTask(child, "not an int")  # E[misc]: Cannot infer value of type parameter "InputT_co" of "ChildTask"

        def run_parent(ctx: TaskContext, name: str) -> ParentTaskResult[int]:
            return ParentTaskResult(output=len(name))

        def finalize(ctx: TaskContext, fin: FinalizeTaskInput[str, str]) -> bool:
            return True

        # The finalize task expects a str run output, the parent produces an int.
        executor.parent_task(
            id="p",
            timeout_ms=1000,
            run_parent=run_parent,  # E[arg-type]: Argument "run_parent" to "parent_task" of "DurableExecutor" has incompatible type
            finalize_task=FinalizeTask(id="f", timeout_ms=1000, run=finalize),
        )
    """,
}

SNIPPETS.update(STORABLE_CORRECT)
SNIPPETS.update(STORABLE_MISUSES)

_MARKER = re.compile(r"#\s*(?P<kind>E|N)(?:\[(?P<code>[a-z-]+)\])?:\s*(?P<text>.+?)\s*$")
_MYPY_LINE = re.compile(r"^(?P<file>[^:]+\.py):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")


def _expected(source: str) -> dict[int, list[tuple[str, str]]]:
    """Per line, the expected (kind, text); an error's text ends with its code, as mypy's."""
    expected: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for number, line in enumerate(source.splitlines(), start=1):
        for marker in _MARKER.finditer(line):
            if marker["kind"] == "E":
                assert marker["code"], f"line {number}: an error marker needs its code: {line}"
                # The code is matched apart from the text: mypy writes it after the message.
                expected[number].append(("error", f"{marker['text']}\0[{marker['code']}]"))
            else:
                expected[number].append(("note", marker["text"]))
    return expected


def _matches(wanted: str, got: str) -> bool:
    text, _, code = wanted.partition("\0")
    return text in got and (not code or got.endswith(f"  {code}"))


@pytest.fixture(scope="module")
def mypy_results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[int, list[tuple[str, str]]]]:
    """Runs mypy once over every snippet; returns, per snippet, its messages by line."""
    root = tmp_path_factory.mktemp("typing")
    config = root / "mypy.ini"
    config.write_text(
        f"[mypy]\nstrict = True\npython_version = 3.11\nmypy_path = {SRC_DIR}\n"
        "show_error_codes = True\n"
    )
    paths = []
    for name, source in SNIPPETS.items():
        path = root / f"{name}.py"
        path.write_text(textwrap.dedent(source).lstrip())
        paths.append(str(path))
    stdout, stderr, _status = mypy_api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(root / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            "--soft-error-limit=-1",
            *paths,
        ]
    )
    assert stderr == "", stderr
    results: dict[str, dict[int, list[tuple[str, str]]]] = {name: {} for name in SNIPPETS}
    for line in stdout.splitlines():
        match = _MYPY_LINE.match(line)
        assert match, f"unexpected mypy output: {line}"
        name = Path(match["file"]).stem
        results[name].setdefault(int(match["line"]), []).append((match["kind"], match["text"]))
    return results


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet(name: str, mypy_results: dict[str, dict[int, list[tuple[str, str]]]]) -> None:
    source = textwrap.dedent(SNIPPETS[name]).lstrip()
    expected = _expected(source)
    actual = mypy_results[name]
    problems: list[str] = []
    for line in sorted(set(expected) | set(actual)):
        wanted = expected.get(line, [])
        got = actual.get(line, [])
        for kind, text in got:
            if kind == "note" and text.startswith("See https://"):
                continue  # mypy's documentation links carry no meaning here
            if not any(kind == w_kind and _matches(w_text, text) for w_kind, w_text in wanted):
                problems.append(f"line {line}: unexpected {kind}: {text}")
        for w_kind, w_text in wanted:
            if not any(kind == w_kind and _matches(w_text, text) for kind, text in got):
                shown = w_text.replace("\0", " ")
                problems.append(f"line {line}: missing {w_kind} containing: {shown}")
    assert not problems, "\n".join(problems)


def test_markers_are_present_in_every_incorrect_snippet() -> None:
    """A snippet meant to fail must say where; otherwise it would pass by producing nothing."""
    for name, source in SNIPPETS.items():
        has_errors = any(
            kind == "error" for marks in _expected(source).values() for kind, _ in marks
        )
        correct = name in {
            "simple_task_and_narrowing",
            "async_tasks_and_decorators",
            "parent_tasks",
            "sequential_chaining",
            "validated_inputs",
            "sync_client_typed_like_the_async_api",
            *STORABLE_CORRECT,
        }
        assert has_errors != correct, name

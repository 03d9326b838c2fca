"""Summarise a py-spy profile: ``python -m bench.profile_summary PROFILE.txt [--top 20]``.

Record one with py-spy's "raw" (collapsed stacks) format, for example::

    py-spy record --idle --format raw -r 250 -o w1.txt -- \\
        python -m bench --backend sqlite --workload W1 --n 10000 --repeat 1

and this prints where the time went: the share of samples by *area* of the leaf frame (our
executor, our storages, generated queries, the drivers, asyncio, threads waiting, …), the
functions of ``durable_execution`` with the largest inclusive share, and the hottest leaf
functions. With ``--idle`` recorded, waiting (for the database, for the event loop's selector,
for a worker thread) shows up as its own areas instead of vanishing.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# "function (path:line)" — one frame of a collapsed stack.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")

# py-spy --threads puts "thread (1234): MainThread" before each stack.
_THREAD = re.compile(r"^thread \([^)]*\):? ?(?P<name>.*)$")

# First match wins: more specific areas come first.
_AREAS: tuple[tuple[str, str], ...] = (
    ("durable_execution/generated/", "generated queries"),
    ("durable_execution/storage/", "storage backends"),
    ("durable_execution/", "executor"),
    ("bench/", "bench harness"),
    ("psycopg_pool/", "psycopg pool"),
    ("psycopg/", "psycopg"),
    ("sqlite3/", "sqlite3"),
    ("json/", "json"),
    ("selectors.py", "event loop: waiting in select"),
    ("asyncio/", "asyncio"),
    ("threading.py", "threads: waiting"),
    ("concurrent/futures/", "thread pool"),
    ("queue.py", "thread pool"),
    ("importlib", "imports"),
    ("dataclasses.py", "dataclasses (replace, asdict, …)"),
    ("<string>", "generated dataclass methods"),
    ("datetime", "datetime"),
    ("typing.py", "typing"),
    ("enum.py", "enum"),
    ("secrets.py", "ids (secrets/random)"),
    ("random.py", "ids (secrets/random)"),
    ("logging/", "logging"),
    ("contextlib.py", "contextlib"),
)


@dataclass(frozen=True, slots=True)
class Frame:
    function: str
    path: str

    @property
    def area(self) -> str:
        for marker, area in _AREAS:
            if marker in self.path:
                return area
        return "other"

    @property
    def label(self) -> str:
        short = self.path.split("site-packages/")[-1].split("/src/")[-1]
        return f"{self.function} ({short})"


@dataclass(frozen=True, slots=True)
class Stack:
    frames: tuple[Frame, ...]
    count: int
    thread: str = ""  # with py-spy --threads: the thread's name, e.g. "MainThread"


def parse(lines: Iterable[str]) -> list[Stack]:
    stacks: list[Stack] = []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        text, _, count = line.rpartition(" ")
        frames: list[Frame] = []
        thread = ""
        for part in text.split(";"):
            header = _THREAD.match(part.strip())
            if header:
                thread = header["name"]
                continue
            match = _FRAME.match(part.strip())
            if match:  # other headers (py-spy --pid's "process 123:…") are skipped
                frames.append(Frame(match["function"], match["path"]))
        if frames:
            stacks.append(Stack(tuple(frames), int(count), thread))
    return stacks


def _shares(counter: Counter[str], total: int, top: int) -> list[str]:
    return [f"{count / total:6.1%}  {name}" for name, count in counter.most_common(top)]


def without_imports(stacks: Iterable[Stack]) -> list[Stack]:
    """The stacks not inside an import: module start-up is not the workload."""
    return [stack for stack in stacks if not any("importlib" in f.path for f in stack.frames)]


def summarise(stacks: Sequence[Stack], top: int) -> str:
    total = sum(stack.count for stack in stacks)
    if not total:
        return "no samples"
    by_area: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    ours_inclusive: Counter[str] = Counter()
    for stack in stacks:
        leaf = stack.frames[-1]
        by_area[leaf.area] += stack.count
        leaves[leaf.label] += stack.count
        # Each of our functions once per stack, however deep the recursion.
        for label in {f.label for f in stack.frames if "durable_execution/" in f.path}:
            ours_inclusive[label] += stack.count
    by_thread: Counter[str] = Counter()
    for stack in stacks:
        if stack.thread:
            by_thread[f"{stack.thread}: {stack.frames[-1].area}"] += stack.count
    sections = [
        f"{total} samples",
        "",
        "By area of the innermost frame:",
        *_shares(by_area, total, top),
    ]
    if by_thread:
        sections += ["", "By thread and area:", *_shares(by_thread, total, top)]
    sections += [
        "",
        "durable_execution functions, inclusive (share of samples with it on the stack):",
        *_shares(ours_inclusive, total, top),
        "",
        "Hottest innermost frames:",
        *_shares(leaves, total, top),
    ]
    return "\n".join(sections)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy output recorded with --format raw")
    parser.add_argument("--top", type=int, default=15, help="lines per section (default 15)")
    parser.add_argument(
        "--keep-imports", action="store_true", help="count samples taken inside imports too"
    )
    args = parser.parse_args(argv)
    with args.profile.open() as lines:
        stacks = parse(lines)
    print(summarise(stacks if args.keep_imports else without_imports(stacks), args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

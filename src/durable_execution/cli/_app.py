"""Finding the user's tasks: ``module:attribute`` names a function that registers them.

The worker builds the executor itself (it owns the storage, the concurrency limit and the
lifecycle) and hands it to the app's registration function::

    # myapp/tasks.py
    def register(executor: DurableExecutor) -> None:
        @executor.task(id="send_email", timeout_ms=10_000)
        async def send_email(ctx: TaskContext, to: str) -> None: ...

    $ durable-execution worker myapp.tasks:register --db postgresql://…

Processes that only enqueue call the same function on an executor they never start, so both
sides agree on every task id. Whatever the function returns is ignored (returning the ``Task``
objects is a convenient way to hand them to enqueuing code).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias, cast

from durable_execution import DurableExecutor
from durable_execution.cli._common import CliError

# object: the app's return value is not used (see the module docstring).
RegisterTasks: TypeAlias = Callable[[DurableExecutor], object]

APP_FORMAT = "module:function, e.g. myapp.tasks:register"


def _where(error: BaseException) -> str:
    """`` (file.py:12)`` for the innermost frame that raised ``error``, if there is one."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" ({frame.filename}:{frame.lineno})"


def _import(module_name: str, app_dir: Path) -> object:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CliError(
                f"cannot import {module_name!r}: no module named {missing!r} (looked in "
                f"{app_dir} and the installed packages; use --app-dir to point elsewhere)"
            ) from None
        raise CliError(
            f"importing {module_name!r} failed: {error}{_where(error)}"
        ) from None  # the module itself imports something that is not installed
    except Exception as error:
        raise CliError(
            f"importing {module_name!r} failed: {type(error).__name__}: {error}{_where(error)}"
        ) from None


def load_app(spec: str, app_dir: Path) -> RegisterTasks:
    """The registration function ``spec`` names, importing its module from ``app_dir`` first."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CliError(f"APP {spec!r} is not of the form {APP_FORMAT}")
    directory = str(app_dir.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    target = _import(module_name, app_dir)
    for name in attribute.split("."):
        if not hasattr(target, name):
            raise CliError(f"APP {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, name)
    if isinstance(target, DurableExecutor):
        raise CliError(
            f"APP {spec!r} is an executor; the worker creates its own executor (with --db and "
            f"--concurrency) and needs a function that registers tasks on it: "
            f"def register(executor: DurableExecutor) -> None"
        )
    if not callable(target):
        raise CliError(
            f"APP {spec!r} is a {type(target).__name__}, not a function that registers tasks: "
            "def register(executor: DurableExecutor) -> None"
        )
    try:
        inspect.signature(target).bind(object())
    except TypeError:
        raise CliError(
            f"APP {spec!r} must take exactly one argument, the executor: "
            "def register(executor: DurableExecutor) -> None"
        ) from None
    except ValueError:
        pass  # builtins without a signature: let the call itself decide
    # Checked above as far as Python can: callable with one positional argument.
    return cast("RegisterTasks", target)

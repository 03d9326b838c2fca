"""Dashboards served against a real SQLite file and a real PostgreSQL schema, filled by a real
executor (the same data the CLI tests read), and a real browser to look at them."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from durable_execution.dashboard import Settings

from ._data import Populated, populate
from ._server import serving

_T = TypeVar("_T")
ARTIFACTS = Path(__file__).parent / "artifacts"
PAGE_SIZE = 20
BROWSER_TIMEOUT_MS = 20_000


def run_async(work: Coroutine[object, object, _T]) -> _T:
    """Run ``work`` to the end on a loop of its own, in a thread: Playwright's sync API keeps
    an event loop marked as running in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def populated(request: pytest.FixtureRequest, tmp_path: Path) -> Populated:
    if request.param == "sqlite":
        return run_async(populate(sqlite_url(tmp_path / "dashboard.db")))
    url: str = request.getfixturevalue("postgres_url")
    return run_async(populate(url))


@pytest.fixture
def populated_sqlite(tmp_path: Path) -> Populated:
    return run_async(populate(sqlite_url(tmp_path / "dashboard.db")))


def settings(db: str, *, token: str | None = None, read_only: bool = False) -> Settings:
    return Settings(
        db_url=db,
        table="durable_task_executions",
        db_shown="(test db)",
        token=token,
        read_only=read_only,
        page_size=PAGE_SIZE,
    )


@pytest.fixture
def served(populated: Populated) -> Iterator[str]:
    with serving(settings(populated.db)) as url:
        yield url


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the browser tests need Debian's chromium: apt-get install -y chromium "
            "(.ci/run installs it when missing)"
        )
    launched = playwright.chromium.launch(executable_path=executable)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(BROWSER_TIMEOUT_MS)
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> Path:
    """Keep a full-page screenshot under tests/dashboard/artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

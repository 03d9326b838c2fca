"""The dashboard in a real browser (Debian's chromium through Playwright), on SQLite and
PostgreSQL filled by a real executor: the list, its filters and paging, a parent's tree, cancel,
refreshing in place, and stored values that try to be HTML."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from ._data import CHILDREN, HOSTILE, Populated, make_ready
from .conftest import PAGE_SIZE, run_async, screenshot

REFRESH_WAIT_MS = 20_000  # the page refreshes every 5 s; a loaded machine may be slower


def backend(populated: Populated) -> str:
    return "pg" if populated.db.startswith("postgresql") else "sqlite"


def status_cells(page: Page) -> list[str]:
    return page.locator("table.executions tbody td:nth-child(3)").all_inner_texts()


def test_list_filter_and_parent_tree(page: Page, served: str, populated: Populated) -> None:
    page.goto(served)
    expect(page.locator("table.executions tbody tr")).to_have_count(PAGE_SIZE)
    expect(page.locator(".count.status-done .n").first).to_have_text(str(CHILDREN + 2))
    screenshot(page, f"list-{backend(populated)}")

    page.select_option("select[name=status]", "children_tasks_failed")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"status=children_tasks_failed"))
    assert status_cells(page) == ["children_tasks_failed"]

    page.click(f"a:text-is('{populated.parents['mixed']}')")
    expect(page.locator("#status")).to_have_text("children_tasks_failed")
    tree = page.locator(".tree")
    expect(tree.locator(".node .node")).to_have_count(2)
    expect(tree.locator(".node .node").nth(0)).to_contain_text("[0] double")
    expect(tree.locator(".node .node").nth(0)).to_contain_text("completed")
    expect(tree.locator(".node .node").nth(1)).to_contain_text("[1] explode")
    expect(tree.locator(".node .node").nth(1)).to_contain_text("boom 7")
    expect(page.locator(".errors")).to_contain_text("child 1 (explode)")
    screenshot(page, f"execution-{backend(populated)}")

    # The failed child's own page has the traceback.
    tree.locator(".node .node").nth(1).locator("a.id").click()
    expect(page.locator(".errors pre.value")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator(".errors pre.value")).to_contain_text('raise ValueError(f"boom {value}")')
    screenshot(page, f"failed-child-{backend(populated)}")
    page.emulate_media(color_scheme="dark")
    screenshot(page, f"failed-child-dark-{backend(populated)}")


def test_list_pages_by_keyset(page: Page, served: str) -> None:
    page.goto(served)
    first = page.locator("table.executions tbody td.mono a").all_inner_texts()
    page.click("a[rel=next]")
    expect(page).to_have_url(re.compile(r"before=te_"))
    second = page.locator("table.executions tbody td.mono a").all_inner_texts()
    # 36 executions: 20 on the first page, 16 older ones on the second, none twice.
    assert len(first) == PAGE_SIZE
    assert len(second) == CHILDREN + 6 - PAGE_SIZE
    assert not set(first) & set(second)
    expect(page.locator("a[rel=next]")).to_have_count(0)


def test_cancel_a_ready_execution(page: Page, served: str, populated: Populated) -> None:
    page.goto(f"{served}/executions/{populated.ready}")
    expect(page.locator("#status")).to_have_text("ready")
    page.click("button:text('Cancel execution')")
    expect(page.locator("#status")).to_have_text("cancelled")
    expect(page.locator(".notice")).to_have_text("Cancelled.")
    expect(page.locator("button:text('Cancel execution')")).to_have_count(0)
    page.goto(f"{served}/?status=cancelled")
    expect(page.locator("table.executions tbody td.mono a")).to_have_text([populated.ready])


def test_hostile_values_show_as_text(page: Page, served: str, populated: Populated) -> None:
    page.goto(f"{served}/?task=hostile")
    expect(page.locator("table.executions td.error")).to_have_text(f"ValueError: {HOSTILE}")
    page.click(f"a:text-is('{populated.hostile}')")
    expect(page.locator(".values pre.value")).to_have_text(f'"{HOSTILE}"')
    expect(page.locator(".error-box .message")).to_have_text(f"ValueError: {HOSTILE}")
    assert page.evaluate("typeof window.pwned") == "undefined"
    screenshot(page, f"hostile-{backend(populated)}")
    assert page.locator("main script").count() == 0


def test_list_refreshes_in_place(page: Page, served: str, populated: Populated) -> None:
    page.goto(f"{served}/?task=waits")
    expect(page.locator("table.executions tbody tr")).to_have_count(1)
    page.evaluate("window.sameDocument = true")
    added = run_async(make_ready(populated.db))
    expect(page.locator(f"a:text-is('{added}')")).to_be_visible(timeout=REFRESH_WAIT_MS)
    expect(page.locator("table.executions tbody tr")).to_have_count(2)
    assert page.evaluate("window.sameDocument") is True  # no reload: a fragment was swapped in


def test_rerun_a_failed_parent(page: Page, served: str, populated: Populated) -> None:
    mixed = populated.parents["mixed"]
    page.goto(f"{served}/executions/{mixed}")
    expect(page.locator("button:text('Cancel execution')")).to_have_count(0)
    page.click("button:text('Rerun')")
    # The new execution's page: ready (no worker here), linked back to the original.
    expect(page).not_to_have_url(re.compile(rf"/executions/{mixed}$"))
    expect(page.locator("#status")).to_have_text("ready")
    expect(page.locator("dd a.mono", has_text=mixed)).to_be_visible()
    expect(page.locator("button:text('Rerun')")).to_have_count(0)  # active: nothing to rerun
    page.goto(f"{served}/executions/{populated.ready}")
    expect(page.locator("button:text('Rerun')")).to_have_count(0)

"""What keeps the dashboard safe, over plain HTTP against a real server: the token, CSRF,
read-only mode, the response headers, no password on any page, and values shown in full."""

from __future__ import annotations

import re

import pytest

from durable_execution.dashboard._security import COOKIE, CSRF_FIELD, HEADERS

from ._data import Populated, make_ready
from ._server import Reply, fetch, serving
from .conftest import run_async, settings

TOKEN = "s3cret-token-for-tests"
HTML = {"Accept": "text/html"}


def csrf_token(page: Reply) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([0-9a-f]+)"', page.body)
    assert found is not None, "the page has no cancel form"
    return found.group(1)


def session_cookie(reply: Reply) -> str:
    cookie = reply.headers.get("set-cookie", "")
    assert cookie.startswith(f"{COOKIE}="), cookie
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    return cookie.split(";", 1)[0]


def test_token_is_required_on_every_page(populated_sqlite: Populated) -> None:
    ready = populated_sqlite.ready
    with serving(settings(populated_sqlite.db, token=TOKEN)) as url:
        for path in (
            "/",
            f"/executions/{ready}",
            "/fragments/executions",
            "/fragments/summary",
        ):
            refused = fetch(url + path, headers=HTML)
            assert refused.status == 401, path
            # The login page: no executions, no database name.
            assert "Sign in" in refused.body
            assert "test db" not in refused.body
            assert 'class="executions"' not in refused.body
            assert 'id="status"' not in refused.body
        assert fetch(url + "/?token=wrong", headers=HTML).status == 401
        assert fetch(url + "/", headers={"Cookie": f"{COOKIE}=forged"}).status == 401
        # The assets hold no data: the login page needs them.
        assert fetch(url + "/static/dashboard.css").status == 200

        # ?token= once: a cookie, and the same page without the token in the address.
        signed = fetch(url + f"/?status=ready&token={TOKEN}")
        assert signed.status == 303
        assert signed.headers["location"] == "/?status=ready"
        cookie = session_cookie(signed)
        assert TOKEN not in cookie  # the cookie is a MAC of the token, not the token
        assert fetch(url + "/?status=ready", headers={"Cookie": cookie}).status == 200

        # The login form does the same; a wrong token is refused.
        assert fetch(url + "/login", data={"token": "nope", "next": "/"}).status == 401
        login = fetch(url + "/login", data={"token": TOKEN, "next": f"/executions/{ready}"})
        assert login.status == 303
        assert login.headers["location"] == f"/executions/{ready}"
        assert fetch(url + login.headers["location"], headers={"Cookie": cookie}).status == 200
        # A login never sends the browser to another site.
        away = fetch(url + "/login", data={"token": TOKEN, "next": "//evil.example/"})
        assert away.headers["location"] == "/"


def test_cancel_needs_the_csrf_token(populated_sqlite: Populated) -> None:
    ready = populated_sqlite.ready
    with serving(settings(populated_sqlite.db)) as url:
        page = fetch(f"{url}/executions/{ready}")
        token = csrf_token(page)
        action = f"{url}/executions/{ready}/cancel"
        assert fetch(action, data={}).status == 403
        assert fetch(action, data={CSRF_FIELD: "0" * len(token)}).status == 403
        cross_site = fetch(
            action, data={CSRF_FIELD: token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross_site.status == 403
        foreign = fetch(action, data={CSRF_FIELD: token}, headers={"Origin": "http://evil.example"})
        assert foreign.status == 403
        assert "ready" in fetch(f"{url}/executions/{ready}").body  # still not cancelled
        done = fetch(action, data={CSRF_FIELD: token})
        assert done.status == 303
        assert 'id="status">cancelled<' in fetch(url + done.headers["location"]).body


def test_rerun_needs_the_csrf_token_and_a_finished_execution(
    populated_sqlite: Populated,
) -> None:
    mixed, ready = populated_sqlite.parents["mixed"], populated_sqlite.ready
    with serving(settings(populated_sqlite.db)) as url:
        token = csrf_token(fetch(f"{url}/executions/{mixed}"))
        assert fetch(f"{url}/executions/{mixed}/rerun", data={}).status == 403
        active = fetch(f"{url}/executions/{ready}/rerun", data={CSRF_FIELD: token})
        assert active.status == 409
        assert "only a finished execution can be rerun" in active.body
        done = fetch(f"{url}/executions/{mixed}/rerun", data={CSRF_FIELD: token})
        assert done.status == 303
        assert done.headers["location"] != f"/executions/{mixed}"
        assert f"/executions/{mixed}" in fetch(url + done.headers["location"]).body


def test_read_only_hides_and_refuses_cancel_and_rerun(populated_sqlite: Populated) -> None:
    ready = populated_sqlite.ready
    with serving(settings(populated_sqlite.db)) as url:
        token = csrf_token(fetch(f"{url}/executions/{ready}"))
    # The same process secret would give the same token: a forged POST has a valid one.
    with serving(settings(populated_sqlite.db, read_only=True)) as url:
        page = fetch(f"{url}/executions/{ready}")
        assert page.status == 200
        assert "Cancel execution" not in page.body
        assert '<form method="post"' not in page.body
        assert "read-only" in page.body
        forged = fetch(f"{url}/executions/{ready}/cancel", data={CSRF_FIELD: token})
        assert forged.status == 403
        mixed = populated_sqlite.parents["mixed"]
        assert "Rerun" not in fetch(f"{url}/executions/{mixed}").body
        forged_rerun = fetch(f"{url}/executions/{mixed}/rerun", data={CSRF_FIELD: token})
        assert forged_rerun.status == 403
        assert 'id="status">ready<' in fetch(f"{url}/executions/{ready}").body


def test_every_response_has_the_security_headers(populated_sqlite: Populated) -> None:
    with serving(settings(populated_sqlite.db)) as url:
        for path in ("/", "/static/dashboard.css", "/executions/te_nope", "/?status=bogus"):
            reply = fetch(url + path)
            for name, value in HEADERS.items():
                assert reply.headers[name] == value, (path, name)
        assert "default-src 'self'" in HEADERS["Content-Security-Policy"]


def test_no_password_on_any_page(postgres_url: str) -> None:
    """The command passes the masked URL; the page shows that and nothing else of it."""
    from durable_execution.cli._common import Target

    with_password = postgres_url.replace("postgres@", "postgres:hunter2secret@", 1)
    run_async(make_ready(postgres_url))
    shown = Target(with_password, "durable_task_executions").shown
    assert "hunter2secret" not in shown
    from durable_execution.dashboard import Settings

    served = Settings(
        db_url=postgres_url, table="durable_task_executions", db_shown=shown, page_size=5
    )
    with serving(served) as url:
        page = fetch(url + "/")
        assert shown in page.body.replace("&#39;", "'")
        assert "hunter2secret" not in page.body


def test_long_values_are_cut_with_a_link_to_all(populated_sqlite: Populated) -> None:
    long_id = run_async(make_ready(populated_sqlite.db, "y" * 10_000))
    with serving(settings(populated_sqlite.db)) as url:
        page = fetch(f"{url}/executions/{long_id}")
        assert "of 10002 characters" in page.body
        assert "y" * 10_000 not in page.body
        full = fetch(f"{url}/executions/{long_id}/values/input")
        assert full.status == 200
        assert full.body == '"' + "y" * 10_000 + '"'
        assert full.headers["content-type"].startswith("text/plain")
        assert fetch(f"{url}/executions/{long_id}/values/secret").status == 404


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=bogus", "status &#39;bogus&#39; is not one of"),
        ("from=yesterday", "from &#39;yesterday&#39; is not a date"),
    ],
)
def test_bad_filters_are_named(populated_sqlite: Populated, query: str, message: str) -> None:
    with serving(settings(populated_sqlite.db)) as url:
        reply = fetch(f"{url}/?{query}")
        assert reply.status == 400
        assert message in reply.body


def test_execution_id_filter_opens_the_execution(populated_sqlite: Populated) -> None:
    ready = populated_sqlite.ready
    with serving(settings(populated_sqlite.db)) as url:
        jump = fetch(f"{url}/?execution=+{ready}+")
        assert jump.status == 303
        assert jump.headers["location"] == f"/executions/{ready}"
        missing = fetch(f"{url}/executions/te_missing")
        assert missing.status == 404
        assert "No execution has the id" in missing.body


def test_time_range_filter(populated_sqlite: Populated) -> None:
    with serving(settings(populated_sqlite.db)) as url:
        everything = fetch(f"{url}/?from=2000-01-01T00:00&to=2999-01-01T00:00")
        assert everything.status == 200
        assert populated_sqlite.ready in everything.body
        nothing = fetch(f"{url}/?to=2000-01-01T00:00")
        assert "No executions match." in nothing.body

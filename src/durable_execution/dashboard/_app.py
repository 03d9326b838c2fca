"""The dashboard's Starlette application: routes, the storage it reads, the templates.

The storage is opened in the application's lifespan (on the server's own event loop) and read
only through public APIs: the inspection queries (:class:`InspectableStorage`), the tree reader
the CLI's ``show`` uses, and :func:`cancel_execution`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from durable_execution import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableStorage,
    cancel_execution,
    clock,
    open_storage,
    rerun_execution,
)
from durable_execution._trees import load_tree
from durable_execution.cli._render import format_duration, timing
from durable_execution.dashboard import _present as present
from durable_execution.dashboard._filters import FilterError, parse_filters
from durable_execution.dashboard._security import (
    CSRF_FIELD,
    Guard,
    SecurityMiddleware,
    form_fields,
    local_path,
    origin_ok,
    set_session,
)
from durable_execution.model import ALL_STATUSES
from durable_execution.storage import InspectableStorage, MalformedRowError

HERE: Final = Path(__file__).parent
PAGE_SIZE: Final = 50
VALUE_FIELDS: Final = ("input", "run_output", "output", "traceback")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the dashboard serves: ``db_shown`` is the URL with its password masked (the only
    form of the URL any page sees)."""

    db_url: str
    table: str
    db_shown: str
    token: str | None = None
    read_only: bool = False
    page_size: int = PAGE_SIZE
    secret: bytes | None = field(default=None, repr=False)


class _State:
    storage: DurableStorage
    inspectable: InspectableStorage


def _templates() -> Jinja2Templates:
    # Autoescape everywhere: every stored value (inputs, errors, task ids) is text on the page.
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        tone=present.tone,
        is_active=present.is_active,
        moment=present.moment,
        duration=format_duration,
        status_choices=present.STATUS_CHOICES,
        csrf_field=CSRF_FIELD,
    )
    env.filters["path"] = lambda value: quote(str(value), safe="")
    return Jinja2Templates(env=env)


def create_app(settings: Settings) -> Starlette:
    """The dashboard as an ASGI application (run it with any ASGI server, e.g. uvicorn)."""
    templates = _templates()
    guard = Guard(settings.token, settings.secret)
    state = _State()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_storage(
            settings.db_url, migrate=False, table_name=settings.table
        ) as storage:
            if not isinstance(storage, InspectableStorage):
                raise RuntimeError(f"{settings.db_shown} does not support listing executions")
            state.storage, state.inspectable = storage, storage
            yield

    def render(
        request: Request, name: str, context: Mapping[str, object], status_code: int = 200
    ) -> Response:
        base = {
            "db_shown": settings.db_shown,
            "read_only": settings.read_only,
            "csrf_token": guard.csrf_token,
            "signed_in_with_token": settings.token is not None,
        }
        return templates.TemplateResponse(
            request, name, {**base, **context}, status_code=status_code
        )

    def problem(request: Request, status_code: int, title: str, detail: str) -> Response:
        return render(request, "problem.html", {"title": title, "detail": detail}, status_code)

    async def login_page(request: Request, message: str, status_code: int) -> Response:
        target = local_path(request.query_params.get("next", request.url.path))
        # The database is not named to someone who has not signed in.
        context = {"message": message, "next": target, "db_shown": ""}
        return render(request, "login.html", context, status_code)

    async def list_context(request: Request) -> dict[str, object] | Response:
        try:
            filters = parse_filters(request.query_params)
        except FilterError as error:
            return problem(request, 400, "Bad filter", str(error))
        now = clock.now()
        found = await state.inspectable.list_task_executions(
            statuses=filters.statuses,
            task_id=filters.task_id,
            top_level_only=filters.top_level_only,
            created_from=filters.created_from,
            created_before=filters.created_before,
            before_execution_id=filters.before,
            limit=settings.page_size + 1,
        )
        page = found[: settings.page_size]
        older = None
        if len(found) > settings.page_size:
            older = filters.query(before=page[-1].execution_id)
        return {
            "filters": filters,
            "rows": present.rows(page, now),
            "older_query": older,
            "newest_query": filters.query(before=None) if filters.before else None,
            "updated": now.astimezone(UTC).strftime("%H:%M:%S"),
        }

    async def summary(request: Request) -> Response:
        """Counts per status and the oldest ready execution: a fragment of its own, loaded
        after the list, because counting reads the whole table (or a whole index) while a page
        of the list reads a page of rows."""
        try:
            filters = parse_filters(request.query_params)
        except FilterError as error:
            return PlainTextResponse(str(error), status_code=400)
        now = clock.now()
        counts = await state.inspectable.count_task_executions_by_status(
            task_id=filters.task_id, top_level_only=filters.top_level_only
        )
        oldest = await state.inspectable.get_oldest_ready_task_execution(task_id=filters.task_id)
        context: dict[str, object] = {
            "filters": filters,
            "counts": [(status, counts.get(status, 0)) for status in ALL_STATUSES],
            "total": sum(counts.values()),
            "oldest_ready": present.oldest_ready_age(oldest, now),
            "status_query": lambda status: filters.query(status=status, before=None),
        }
        return render(request, "_summary.html", context)

    async def executions_list(request: Request) -> Response:
        wanted = request.query_params.get("execution", "").strip()
        if wanted:
            return RedirectResponse(f"/executions/{quote(wanted, safe='')}", status_code=303)
        context = await list_context(request)
        if isinstance(context, Response):
            return context
        return render(request, "list.html", context)

    async def executions_fragment(request: Request) -> Response:
        context = await list_context(request)
        if isinstance(context, Response):
            return context
        return render(request, "_live.html", context)

    async def execution_page(request: Request) -> Response:
        execution_id = request.path_params["execution_id"]
        try:
            root = await load_tree(state.storage, execution_id)
        except MalformedRowError as error:
            return problem(request, 500, "Unreadable execution", str(error))
        if root is None:
            return problem(request, 404, "Not found", f"No execution has the id {execution_id!r}.")
        record = root.record
        now = clock.now()
        values = {
            "input": present.value(record.run_input),
            "run_output": present.value(record.run_output)
            if record.children_tasks is not None
            else None,
            "output": present.value(record.output),
        }
        traceback = record.error.traceback if record.error is not None else None
        context: dict[str, object] = {
            "record": record,
            "tree": present.tree(root, now),
            "timing": timing(record, now),
            "values": values,
            "errors": present.error_lines(record),
            "traceback": present.value(traceback) if traceback else None,
            "children_count": len(record.children_tasks or ()),
            "can_cancel": present.is_active(record.status) and not settings.read_only,
            "cancelled": request.query_params.get("cancelled"),
            # A finished execution that is not a finalize task's (rerun its parent instead).
            "can_rerun": not present.is_active(record.status)
            and not (record.parent_task is not None and record.parent_task.is_finalize_task)
            and not settings.read_only,
        }
        return render(request, "execution.html", context)

    async def execution_value(request: Request) -> Response:
        execution_id, name = request.path_params["execution_id"], request.path_params["name"]
        if name not in VALUE_FIELDS:
            return PlainTextResponse(f"no value named {name!r}\n", status_code=404)
        # The whole tree is read for one row: the storage contract's by-id read is being
        # reshaped, load_tree is the stable way in (a few ms even for a thousand children).
        root = await load_tree(state.storage, execution_id)
        if root is None:
            return PlainTextResponse(f"no execution {execution_id!r}\n", status_code=404)
        record = root.record
        stored = {
            "input": record.run_input,
            "run_output": record.run_output,
            "output": record.output,
            "traceback": record.error.traceback if record.error else None,
        }[name]
        if stored is None:
            return PlainTextResponse(f"{execution_id} has no {name}\n", status_code=404)
        text = stored if name == "traceback" else present.pretty(stored)
        return PlainTextResponse(text)

    async def refused_action(request: Request) -> Response | None:
        """Why a POST action may not run (read-only, bad origin or CSRF token), or None."""
        if settings.read_only:
            return problem(request, 403, "Read-only", "This dashboard runs with --read-only.")
        fields = await form_fields(request)
        if not origin_ok(request) or not guard.csrf_ok(fields.get(CSRF_FIELD, "")):
            return problem(
                request,
                403,
                "Refused",
                "The form's CSRF token is missing or stale (the dashboard may have restarted): "
                "reload the page and try again.",
            )
        return None

    async def cancel(request: Request) -> Response:
        execution_id = request.path_params["execution_id"]
        refused = await refused_action(request)
        if refused is not None:
            return refused
        try:
            done = await cancel_execution(state.storage, execution_id)
        except DurableExecutionNotFoundError:
            return problem(request, 404, "Not found", f"No execution has the id {execution_id!r}.")
        outcome = "yes" if done else "already-finished"
        return RedirectResponse(
            f"/executions/{quote(execution_id, safe='')}?{urlencode({'cancelled': outcome})}",
            status_code=303,
        )

    async def rerun(request: Request) -> Response:
        execution_id = request.path_params["execution_id"]
        refused = await refused_action(request)
        if refused is not None:
            return refused
        try:
            record = await rerun_execution(state.storage, execution_id)
        except DurableExecutionNotFoundError:
            return problem(request, 404, "Not found", f"No execution has the id {execution_id!r}.")
        except DurableExecutionError as error:
            return problem(request, 409, "Cannot rerun", str(error))
        return RedirectResponse(
            f"/executions/{quote(record.execution_id, safe='')}", status_code=303
        )

    async def login(request: Request) -> Response:
        if settings.token is None:
            return RedirectResponse("/", status_code=303)
        if request.method == "GET":
            return await login_page(request, "", 200)
        fields = await form_fields(request)
        target = local_path(fields.get("next", "/"))
        if not guard.token_matches(fields.get("token", "")):
            context = {"message": "That token is not right.", "next": target, "db_shown": ""}
            return render(request, "login.html", context, 401)
        response = RedirectResponse(target, status_code=303)
        set_session(response, guard)
        return response

    app = Starlette(
        routes=[
            Route("/", executions_list),
            Route("/fragments/executions", executions_fragment),
            Route("/fragments/summary", summary),
            Route("/executions/{execution_id}", execution_page),
            Route("/executions/{execution_id}/values/{name}", execution_value),
            Route("/executions/{execution_id}/cancel", cancel, methods=["POST"]),
            Route("/executions/{execution_id}/rerun", rerun, methods=["POST"]),
            Route("/login", login, methods=["GET", "POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(SecurityMiddleware, guard=guard, login_page=login_page)
    return app

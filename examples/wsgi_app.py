"""A plain WSGI web app (no framework) that enqueues a durable task per request.

The web process has no event loop: it enqueues with a :class:`SyncClient` shared by all its
threads, and ``durable-execution worker`` runs the tasks (``register`` below, for both)::

    durable-execution worker wsgi_app:register --app-dir examples --db sqlite:///web.db
    python examples/wsgi_app.py --db sqlite:///web.db --port 8000

    curl -X POST 'localhost:8000/welcome?name=Ada'   # 202 {"execution_id": "te_…"}
    curl localhost:8000/executions/te_…              # {"status": "completed", "output": …}

The web process calls ``register`` on an executor it never starts: the client needs only the
tasks' ids, defaults and input checks. Any WSGI server works (gunicorn, uwsgi, mod_wsgi):
build the app with :func:`make_app` and close the client at shutdown.
"""

import argparse
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIServer, make_server

from durable_execution import (
    DurableExecutionNotFoundError,
    DurableExecutor,
    InMemoryStorage,
    SyncClient,
    Task,
    TaskContext,
)

# Any: WSGI's environ and start_response are untyped by the standard (PEP 3333).
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Tasks:
    welcome: Task[str, str]


def register(executor: DurableExecutor) -> Tasks:
    """This app's tasks: the worker registers them to run them, the web process to enqueue."""

    @executor.task(id="web_welcome", timeout_ms=10_000)
    def welcome(ctx: TaskContext, name: str) -> str:
        return f"Welcome, {name}!"  # stands for real work: an e-mail, an API call…

    return Tasks(welcome=welcome)


def make_app(client: SyncClient) -> WsgiApp:
    """The WSGI callable: ``POST /welcome?name=…`` enqueues, ``GET /executions/<id>`` reads."""
    tasks = register(DurableExecutor(InMemoryStorage()))  # never started: ids and defaults only

    def respond(start_response: StartResponse, status: str, body: object) -> list[bytes]:
        data = json.dumps(body).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method == "POST" and path == "/welcome":
            names = parse_qs(environ.get("QUERY_STRING", "")).get("name", [])
            if len(names) != 1 or not names[0]:
                return respond(start_response, "400 Bad Request", {"error": "give one ?name="})
            handle = client.enqueue_task(tasks.welcome, names[0])  # committed when it returns
            return respond(start_response, "202 Accepted", {"execution_id": handle.execution_id})
        if method == "GET" and path.startswith("/executions/"):
            try:
                execution = client.get_execution(path.removeprefix("/executions/"))
            except DurableExecutionNotFoundError:
                return respond(start_response, "404 Not Found", {"error": "no such execution"})
            body: dict[str, object] = {"status": execution.status}
            if execution.status == "completed":
                body["output"] = execution.output
            return respond(start_response, "200 OK", body)
        return respond(start_response, "404 Not Found", {"error": f"no route {method} {path}"})

    return app


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request: the threads share the one client."""

    daemon_threads = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///web.db", help="the workers' database URL")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with SyncClient(args.db) as client:
        server = make_server("127.0.0.1", args.port, make_app(client), ThreadingWSGIServer)
        print(f"serving on http://127.0.0.1:{args.port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


if __name__ == "__main__":
    main()

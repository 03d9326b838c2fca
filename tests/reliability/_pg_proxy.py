"""A TCP proxy between psycopg and a real PostgreSQL server that can lose a COMMIT's reply.

Armed, it forwards the next message that commits — a ``COMMIT`` (a simple-protocol Query
message, which is how psycopg ends a transaction), or the ``Sync`` that ends a statement sent
in autocommit outside any ``BEGIN`` (the storage sends a one-statement transaction that way, and
the server commits it at that ``Sync``) — waits until the server answers — the transaction is then
committed — and instead of passing the answer on, closes both sides of that session. The client
sees its connection drop with the outcome of its COMMIT unknown, exactly as when a network or a
server failure strikes at that moment. Nothing about the database is simulated.

The client must not negotiate TLS or GSS encryption (``sslmode=disable&gssencmode=disable``), so
that the proxy can read the protocol's message framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_ENCRYPTION_REQUESTS = {80877103, 80877104}  # SSLRequest, GSSENCRequest codes


class CommitReplyLosingProxy:
    def __init__(self, server_host: str, server_port: int) -> None:
        self._server = (server_host, server_port)
        self._listener: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.armed = False
        self.cuts = 0  # COMMIT replies lost so far
        self.port = 0

    async def start(self) -> None:
        self._listener = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for session in list(self._sessions):
            session.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    def url_through(self, url: str) -> str:
        """``url`` (a postgresql:// URL of the proxied server) pointed at the proxy."""
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        user = f"{netloc[0]}@" if len(netloc) == 2 else ""
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [("sslmode", "disable"), ("gssencmode", "disable")]
        return urlunsplit(
            parts._replace(netloc=f"{user}127.0.0.1:{self.port}", query=urlencode(query))
        )

    async def _accept(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            server_in, server_out = await asyncio.open_connection(*self._server)
            commit_forwarded = asyncio.Event()
            upstream = asyncio.create_task(
                self._client_to_server(client_in, server_out, commit_forwarded)
            )
            downstream = asyncio.create_task(
                self._server_to_client(server_in, client_out, commit_forwarded)
            )
            try:
                await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                upstream.cancel()
                downstream.cancel()
                await asyncio.gather(upstream, downstream, return_exceptions=True)
                for writer in (client_out, server_out):
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
        finally:
            self._sessions.discard(task)

    async def _client_to_server(
        self,
        client_in: asyncio.StreamReader,
        server_out: asyncio.StreamWriter,
        commit_forwarded: asyncio.Event,
    ) -> None:
        # Startup: untyped messages (length, then a code), an encryption request first maybe.
        while True:
            header = await client_in.readexactly(8)
            length, code = struct.unpack("!ii", header)
            body = await client_in.readexactly(length - 8)
            server_out.write(header + body)
            if code not in _ENCRYPTION_REQUESTS:
                break
        in_block = False  # inside a BEGIN … COMMIT/ROLLBACK the client sent
        executed = False  # an extended-protocol statement was sent since the last Sync
        while True:  # then typed messages: a type byte, a length (itself included), the body
            header = await client_in.readexactly(5)
            (length,) = struct.unpack("!i", header[1:])
            body = await client_in.readexactly(length - 4)
            server_out.write(header + body)
            await server_out.drain()
            kind = header[:1]
            command = body.rstrip(b"\0").strip().upper() if kind == b"Q" else b""
            commits = command == b"COMMIT" or (kind == b"S" and executed and not in_block)
            if command.startswith(b"BEGIN"):
                in_block = True
            elif command in (b"COMMIT", b"ROLLBACK"):
                in_block = False
            if kind == b"E":
                executed = True
            elif kind == b"S":
                executed = False
            if self.armed and commits:
                self.armed = False
                commit_forwarded.set()

    async def _server_to_client(
        self,
        server_in: asyncio.StreamReader,
        client_out: asyncio.StreamWriter,
        commit_forwarded: asyncio.Event,
    ) -> None:
        while True:
            data = await server_in.read(65536)
            if not data:
                return
            if commit_forwarded.is_set():
                # The client waits for nothing but this answer: the COMMIT is done. Drop it.
                self.cuts += 1
                return
            client_out.write(data)
            await client_out.drain()

"""Local HTTP endpoints of the gateway: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``.

A deliberately tiny asyncio HTTP/1.1 server (GET only, one response per connection): the gateway
serves four read-only endpoints to a local Prometheus and to operators, so a web framework would only
add memory and start-up time on small hardware. Handlers are plain callables returning
``(status, content_type, body)``; the daemon provides them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping

_LOGGER = logging.getLogger(__name__)

Response = tuple[int, str, bytes]
Handler = Callable[[], Response | Awaitable[Response]]
MAX_REQUEST_HEAD = 8192  # bytes; longer request heads are refused (431)
READ_TIMEOUT_S = 5.0  # a client that sends nothing for this long is dropped
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


class LocalHttpServer:
    def __init__(self, routes: Mapping[str, Handler], host: str, port: int) -> None:
        self._routes = dict(routes)
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_REQUEST_HEAD)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            status, ctype, body = await self._dispatch(head)
        except (asyncio.LimitOverrunError, ValueError):
            status, ctype, body = 431, "text/plain", b"request head too large\n"
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            writer.close()
            return
        reason = _REASONS.get(status, "")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode() + body
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _dispatch(self, head: bytes) -> Response:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3:
            return 400, "text/plain", b"bad request line\n"
        method, target, _ = parts
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n"
        handler = self._routes.get(target.split("?", 1)[0])
        if handler is None:
            return 404, "text/plain", ("not found; try " + " ".join(sorted(self._routes)) + "\n").encode()
        try:
            result = handler()
            return await result if inspect.isawaitable(result) else result
        except Exception:
            _LOGGER.exception("handler for %s failed", target)
            return 500, "text/plain", b"internal error (see the gateway log)\n"

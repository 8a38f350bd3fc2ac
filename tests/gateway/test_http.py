"""The gateway's local HTTP server over real loopback sockets."""

from __future__ import annotations

import asyncio

import httpx

from gateway.http import LocalHttpServer


async def test_routes_and_errors() -> None:
    def boom() -> tuple[int, str, bytes]:
        raise RuntimeError("x")

    srv = LocalHttpServer({"/healthz": lambda: (200, "text/plain", b"ok\n"), "/boom": boom}, "127.0.0.1", 0)
    await srv.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.port}") as c:
            r = await c.get("/healthz")
            assert (r.status_code, r.text) == (200, "ok\n")
            assert (await c.get("/nope")).status_code == 404
            assert (await c.post("/healthz")).status_code == 405
            assert (await c.get("/boom")).status_code == 500
            r = await c.get("/healthz", headers={"X-Big": "a" * 10000})
            assert r.status_code == 431
        # a silent client does not block others
        _reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.port}") as c:
            assert (await c.get("/healthz")).status_code == 200
        writer.close()
    finally:
        await srv.stop()

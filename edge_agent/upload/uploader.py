"""Send encoded batches and heartbeats to the cloud ingest API over one pooled HTTP client.

The uploader only sends: it never deletes, re-cuts or stores anything. Every call returns a value whose
:class:`Outcome` tells the outbox drainer what to do with the batch:

    SENT          2xx, including a duplicate (200 ``{"status": "duplicate"}``): delete it from the outbox
    RETRY_LATER   5xx, 408, 429, other unexpected statuses, timeouts, connection errors: keep it and wait
                  ``after`` seconds (``Retry-After`` when the server sent one, else backoff with jitter)
    SPLIT         413, or the body is larger than ``max_body``: re-cut it into halves (new seqs)
    DEAD_LETTER   400/409/415/422, or bytes that are not a batch of this gateway: move it to dead letters
    AUTH_FAILED   401/403: stop and report. For ``auth_cooldown`` seconds the uploader answers
                  AUTH_FAILED without sending anything, then lets one request probe again

A drain loop is then a ``match`` on the outcome (see ``docs/wire-format.md`` and the tests). Backoff
state is per uploader (consecutive failures towards the endpoint): a success resets it.

Transport errors of httpx are translated here, once, into outcomes with a ``reason``; the token never
appears in a log line or a result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# httpx's package __init__ imports its command-line client (httpx._main: click, rich, pygments) whenever those
# happen to be installed: ~4 MB of the agent's resident memory for nothing it uses. A None entry makes that
# import fail, and httpx keeps its stub ``httpx.main`` (docs/performance.md, edge memory).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
import httpx  # noqa: E402
import orjson  # noqa: E402

from edge_agent import wire  # noqa: E402
from edge_agent.errors import WireError  # noqa: E402
from edge_agent.upload.backoff import Backoff, BackoffState, parse_retry_after  # noqa: E402

_LOGGER = logging.getLogger(__name__)

BATCHES_PATH = "/v1/batches"
HEARTBEATS_PATH = "/v1/heartbeats"
# Larger bodies are SPLIT before sending: half the ingest API's default cap (16 MiB), and at 0.74 B per
# reading about 10 M readings, far beyond a sensible batch.
DEFAULT_MAX_BODY = 8 * 1024 * 1024
MAX_RESPONSE_BYTES = 64 * 1024  # we read at most this much of a response (acks and error bodies are small)
DEFAULT_AUTH_COOLDOWN = 300.0  # seconds without requests after a 401/403; an operator fixes the token
USER_AGENT = "campus-edge-uploader/1"

_DEAD_LETTER = frozenset({400, 409, 415, 422})
_AUTH = frozenset({401, 403})
_UNREACHABLE = frozenset({502, 503, 504})  # a proxy or load balancer in front of a service that is down


class Outcome(StrEnum):
    """What the caller does with the batch (module docstring)."""

    SENT = "sent"
    RETRY_LATER = "retry_later"
    SPLIT = "split"
    DEAD_LETTER = "dead_letter"
    AUTH_FAILED = "auth_failed"


@dataclass(slots=True, frozen=True)
class UploadResult:
    """The outcome of one request. ``status`` is None when no HTTP response came (or none was sent).

    ``reason`` is machine-readable: the server's ``error.code`` when it sent one, else one of
    ``timeout``, ``connect_error``, ``network_error``, ``http_<status>``, ``too_large``, ``not_a_batch``,
    ``wrong_gateway``, ``auth_blocked``. ``detail`` is for people (truncated).
    """

    outcome: Outcome
    seq: int  # the batch's sequence number (-1 for heartbeats and unreadable bodies)
    status: int | None = None
    after: float = 0.0  # seconds to wait before the next attempt (RETRY_LATER, AUTH_FAILED)
    duplicate: bool = False  # SENT: the server already had this batch
    reason: str = ""
    detail: str = ""
    elapsed: float = 0.0  # seconds spent in the request
    response: Mapping[str, Any] | None = None  # parsed JSON body of a 2xx (heartbeat ack, batch receipt)
    server_wait: bool = False  # RETRY_LATER: ``after`` is the server's Retry-After (not our own backoff)

    @property
    def unreachable(self) -> bool:
        """RETRY_LATER because the cloud could not be reached (no answer, or a proxy's 502/503/504 without
        Retry-After) rather than because it answered: a later sign of life may end the wait early."""
        return (self.outcome is Outcome.RETRY_LATER and not self.server_wait
                and (self.status is None or self.status in _UNREACHABLE))


@dataclass(slots=True, frozen=True)
class Timeouts:
    """HTTP timeouts in seconds. ``total`` bounds a whole request, however slowly a server drips bytes."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0  # waiting for a free connection when max_connections are busy
    total: float = 120.0  # 8 MiB at ~0.6 Mbit/s; lower it on fast links to notice stalls sooner

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"Timeouts.{name} has value {value!r}, must be a finite number > 0")


@dataclass(slots=True)
class UploaderStats:
    """Counters for /metrics and heartbeats (monotonic; the daemon exports them)."""

    requests: int = 0
    sent: int = 0
    duplicates: int = 0
    retries: int = 0
    splits: int = 0
    dead_letters: int = 0
    auth_failures: int = 0
    bytes_sent: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def count(self, result: UploadResult) -> None:
        attr = {Outcome.SENT: "sent", Outcome.RETRY_LATER: "retries", Outcome.SPLIT: "splits",
                Outcome.DEAD_LETTER: "dead_letters", Outcome.AUTH_FAILED: "auth_failures"}[result.outcome]
        setattr(self, attr, getattr(self, attr) + 1)
        self.duplicates += result.duplicate
        if result.reason:
            self.by_reason[result.reason] = self.by_reason.get(result.reason, 0) + 1


@dataclass(slots=True, frozen=True)
class _Reply:
    status: int
    headers: httpx.Headers
    body: bytes


class Uploader:
    """POSTs batches to ``{base_url}/v1/batches`` and heartbeats to ``{base_url}/v1/heartbeats``.

    One ``httpx.AsyncClient`` per uploader: connections are reused, HTTP/2 is negotiated by ALPN over
    TLS when the server offers it. ``transport`` replaces the network for tests (``httpx.MockTransport``)
    or special setups. ``clock`` is monotonic seconds, ``wall_clock`` epoch seconds (for HTTP-date
    ``Retry-After`` and ``sent_at_ms``). Raises ValueError at construction for an unusable URL, gateway
    id or token. Use as ``async with Uploader(...) as up:`` or call :meth:`aclose`.
    """

    def __init__(
        self, base_url: str, gateway_id: str, token: str, *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts = Timeouts(),
        backoff: Backoff = Backoff(),  # noqa: B008 - a frozen value object, safe to share
        max_body: int = DEFAULT_MAX_BODY,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        auth_cooldown: float = DEFAULT_AUTH_COOLDOWN,
        http2: bool = True,
        verify: ssl.SSLContext | str | bool = True,
        max_connections: int = 4,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"upload base URL {base_url!r} must be http(s)://host[:port][/prefix]")
        if not gateway_id or not gateway_id.isprintable() or len(gateway_id) > wire.MAX_GATEWAY_LEN:
            raise ValueError(f"gateway id {gateway_id!r} must be 1-{wire.MAX_GATEWAY_LEN} printable "
                             "characters")
        _check_token(token)
        if max_body <= 0 or max_connections <= 0 or auth_cooldown < 0:
            raise ValueError("max_body and max_connections must be > 0, auth_cooldown >= 0")
        self.gateway_id = gateway_id
        self.timeouts = timeouts
        self.max_body = max_body
        self.auth_cooldown = auth_cooldown
        self.stats = UploaderStats()
        self.backoff = BackoffState(backoff, rng or random.Random())
        self._heartbeat_backoff = BackoffState(backoff, random.Random(self.backoff.rng.random()))
        self._clock = clock
        self._wall = wall_clock
        self._auth_failed_at: float | None = None
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(
            base_url=str(url).rstrip("/"),
            transport=transport or httpx.AsyncHTTPTransport(http2=http2, verify=verify, limits=limits,
                                                            retries=0),
            timeout=httpx.Timeout(connect=timeouts.connect, read=timeouts.read, write=timeouts.write,
                                  pool=timeouts.pool),
            headers={"Authorization": f"Bearer {token}", "X-Gateway-Id": gateway_id,
                     "User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    async def __aenter__(self) -> Uploader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def set_token(self, token: str) -> None:
        """Use a new bearer token (e.g. after a configuration reload) and lift an AUTH_FAILED block."""
        _check_token(token)
        self._client.headers["Authorization"] = f"Bearer {token}"
        self._auth_failed_at = None

    @property
    def auth_blocked_for(self) -> float:
        """Seconds left in the AUTH_FAILED cool-down (0 when requests may be sent)."""
        if self._auth_failed_at is None:
            return 0.0
        return max(0.0, self._auth_failed_at + self.auth_cooldown - self._clock())

    async def upload_batch(self, batch: wire.Batch) -> UploadResult:
        """Encode and upload (tests and tools; the outbox stores encoded bodies and calls :meth:`upload`)."""
        return await self.upload(wire.encode(batch))

    async def upload(self, body: bytes) -> UploadResult:
        """POST one encoded batch and classify the answer. Never raises for network or HTTP problems."""
        try:
            header = wire.read_header(body)
        except WireError as exc:
            return self._done(UploadResult(Outcome.DEAD_LETTER, -1, reason="not_a_batch", detail=str(exc)))
        seq = header.seq
        if header.gateway != self.gateway_id:
            return self._done(UploadResult(Outcome.DEAD_LETTER, seq, reason="wrong_gateway",
                                           detail=f"batch is for gateway {header.gateway[:64]!r}"))
        if len(body) > self.max_body:
            return self._done(UploadResult(Outcome.SPLIT, seq, reason="too_large",
                                           detail=f"{len(body)} bytes > max_body {self.max_body}"))
        blocked = self._blocked(seq)
        if blocked is not None:
            return self._done(blocked)
        headers = {"Content-Type": wire.CONTENT_TYPE, "X-Batch-Seq": str(seq)}
        started = self._clock()
        reply = await self._post(BATCHES_PATH, body, headers, seq)
        elapsed = self._clock() - started
        if isinstance(reply, UploadResult):
            return self._done(_replace_elapsed(reply, elapsed))
        self.stats.bytes_sent += len(body)
        return self._done(self._classify(reply, seq, elapsed, self.backoff, split_413=True))

    async def send_heartbeat(self, status: Mapping[str, Any]) -> UploadResult:
        """POST ``status`` as JSON to /v1/heartbeats; ``gateway`` and ``sent_at_ms`` are filled in if absent.

        Outcomes as for batches except that 413 is DEAD_LETTER (a heartbeat cannot be split) and the
        backoff state is separate. ``response`` holds the server's ack (e.g. ``clock_offset_ms``).
        Raises TypeError if ``status`` is not JSON-serialisable (a programming error).
        """
        payload = {"gateway": self.gateway_id, "sent_at_ms": int(self._wall() * 1000), **status}
        body = orjson.dumps(payload)
        blocked = self._blocked(-1)
        if blocked is not None:
            return blocked
        started = self._clock()
        reply = await self._post(HEARTBEATS_PATH, body, {"Content-Type": "application/json"}, -1)
        elapsed = self._clock() - started
        if isinstance(reply, UploadResult):
            return _replace_elapsed(reply, elapsed)
        return self._classify(reply, -1, elapsed, self._heartbeat_backoff, split_413=False)

    # ---- internals -------------------------------------------------------------------------------------

    def _blocked(self, seq: int) -> UploadResult | None:
        left = self.auth_blocked_for
        if self._auth_failed_at is not None and left > 0:
            return UploadResult(Outcome.AUTH_FAILED, seq, after=left, reason="auth_blocked",
                                detail="the server refused the token earlier; not sending until the "
                                       "cool-down ends or the token is replaced")
        return None

    async def _post(self, path: str, body: bytes, headers: Mapping[str, str],
                    seq: int) -> _Reply | UploadResult:
        """One request under the total deadline; transport failures become RETRY_LATER results."""
        self.stats.requests += 1
        state = self.backoff if path == BATCHES_PATH else self._heartbeat_backoff
        try:
            async with asyncio.timeout(self.timeouts.total):
                async with self._client.stream("POST", path, content=body, headers=headers) as resp:
                    data = await _read_capped(resp, MAX_RESPONSE_BYTES)
                    return _Reply(resp.status_code, resp.headers, data)
        except (TimeoutError, httpx.TimeoutException) as exc:
            reason, detail = "timeout", f"{type(exc).__name__}: no complete answer in time"
        except httpx.ConnectError as exc:
            reason, detail = "connect_error", f"cannot connect: {exc}"[:300]
        except httpx.RequestError as exc:  # read/write errors, protocol errors, decoding errors
            reason, detail = "network_error", f"{type(exc).__name__}: {exc}"[:300]
        return UploadResult(Outcome.RETRY_LATER, seq, after=state.failure(), reason=reason, detail=detail)

    def _classify(self, reply: _Reply, seq: int, elapsed: float, state: BackoffState, *,
                  split_413: bool) -> UploadResult:
        status = reply.status
        doc = _json(reply.body)
        if 200 <= status < 300:
            state.success()
            self._auth_failed_at = None
            duplicate = isinstance(doc, dict) and doc.get("status") == "duplicate"
            return UploadResult(Outcome.SENT, seq, status, duplicate=duplicate, elapsed=elapsed,
                                response=doc if isinstance(doc, dict) else None)
        reason, detail = _error_fields(doc, status, reply.body)
        if status in _AUTH:
            self._auth_failed_at = self._clock()
            return UploadResult(Outcome.AUTH_FAILED, seq, status, after=self.auth_cooldown, reason=reason,
                                detail=detail, elapsed=elapsed)
        if status == 413 and split_413:
            return UploadResult(Outcome.SPLIT, seq, status, reason=reason, detail=detail, elapsed=elapsed)
        if status in _DEAD_LETTER or status == 413:
            return UploadResult(Outcome.DEAD_LETTER, seq, status, reason=reason, detail=detail,
                                elapsed=elapsed)
        wait = state.failure()  # counted even when the server says how long: later silence backs off more
        retry_after = parse_retry_after(reply.headers.get("retry-after"), self._wall())
        return UploadResult(Outcome.RETRY_LATER, seq, status, reason=reason, detail=detail, elapsed=elapsed,
                            after=wait if retry_after is None else retry_after, server_wait=retry_after is not None)

    def _done(self, result: UploadResult) -> UploadResult:
        self.stats.count(result)
        extra = {"gateway": self.gateway_id, "batch_seq": result.seq, "reason": result.reason}
        if result.outcome in (Outcome.DEAD_LETTER, Outcome.AUTH_FAILED):
            _LOGGER.warning("batch %s: %s (%s, HTTP %s): %s", result.seq, result.outcome, result.reason,
                            result.status, result.detail, extra=extra)
        elif result.outcome is not Outcome.SENT and _LOGGER.isEnabledFor(logging.INFO):
            _LOGGER.info("batch %s: %s (%s, HTTP %s), next attempt in %.1f s", result.seq, result.outcome,
                         result.reason, result.status, result.after, extra=extra)
        return result


async def _read_capped(resp: httpx.Response, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= cap:
            break
    return b"".join(chunks)[:cap]


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _error_fields(doc: Any, status: int, body: bytes) -> tuple[str, str]:
    """(code, detail) from the API's ``{"error": {"code", "field", "detail"}}``, else from the status."""
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        field_ = err.get("field")
        detail = str(err.get("detail", ""))
        return err["code"][:64], (f"{field_}: {detail}" if field_ else detail)[:300]
    return f"http_{status}", body[:200].decode("utf-8", "replace")


def _replace_elapsed(result: UploadResult, elapsed: float) -> UploadResult:
    return dataclasses.replace(result, elapsed=elapsed)


def _check_token(token: str) -> None:
    if not token or not token.isprintable() or any(c.isspace() for c in token) or len(token) > 512:
        raise ValueError("upload token must be 1-512 printable characters without spaces")

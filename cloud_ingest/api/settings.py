"""Typed settings of the ingest API, parsed once at startup from an injected mapping (default ``os.environ``).

Sources, strongest first: typed overrides (command-line flags), ``CAMPUS_API_<NAME>`` environment keys,
the ``[api]`` table of the service's config file, then the defaults below. An invalid value raises
:class:`SettingsError` naming the key and the value: ``CAMPUS_API_MAX_BODY_BYTES has value 'abc', not a
valid int``. Unknown keys are refused too, so a typo is not silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cloud_ingest.api.errors import SettingsError
from edge_agent.wire import DEFAULT_MAX_DECOMPRESSED, DEFAULT_MAX_RECORDS

PREFIX = "CAMPUS_API_"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Limits and policies of one API instance. All sizes in bytes, all durations in seconds."""

    tokens_file: Path | None = None  # gateway id -> token hash; required unless a TokenStore is injected
    # 16 MiB: twice the edge's default upload cap (8 MiB); a larger body is refused with 413 unread.
    max_body_bytes: int = 16 * 1024 * 1024
    # Decoder caps (docs/wire-format.md §11): payload bytes after zstd (bombs stop here: 413) and readings +
    # events per batch; together they bound one decode to about max_decompressed + 60 B * max_records.
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED
    max_records: int = DEFAULT_MAX_RECORDS
    # Batch requests admitted at once (receiving, waiting, decoding or landing); beyond, 429 at once.
    # Bounds body memory to max_requests * max_body_bytes; slow senders use these, not landing slots.
    max_requests: int = 16
    # Decodes + landings at once. 2 lets one batch decode while another is written; more does not help
    # DuckDB (one writer) and costs max_decompressed + 60 B * max_records of memory each.
    max_in_flight: int = 2
    # How long a received batch waits for a landing slot before 429 (its body is already here: worth a wait).
    queue_wait_s: float = 2.0
    retry_after_s: int = 5  # Retry-After on 429 and 503
    # A client that takes longer than this to send its body gets 408: slow senders would hold a slot.
    body_timeout_s: float = 60.0
    max_heartbeat_bytes: int = 64 * 1024
    late_after_intervals: float = 1.5  # a gateway is "late" after this many missed heartbeat intervals
    offline_after_intervals: float = 3.0  # ... and "offline" after this many

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_decompressed_bytes", "max_records", "max_requests",
                     "max_in_flight", "retry_after_s", "max_heartbeat_bytes"):
            if getattr(self, name) <= 0:
                raise SettingsError(_key(name), f"has value {getattr(self, name)!r}, must be > 0")
        if self.queue_wait_s < 0:
            raise SettingsError(_key("queue_wait_s"), f"has value {self.queue_wait_s!r}, must be >= 0")
        if self.max_in_flight > self.max_requests:
            raise SettingsError(_key("max_in_flight"), f"has value {self.max_in_flight!r}, must be <= "
                                f"max_requests ({self.max_requests!r})")
        if self.body_timeout_s <= 0:
            raise SettingsError(_key("body_timeout_s"), f"has value {self.body_timeout_s!r}, must be > 0")
        if not 1.0 <= self.late_after_intervals < self.offline_after_intervals:
            raise SettingsError(_key("offline_after_intervals"),
                                f"has value {self.offline_after_intervals!r}: need 1 <= late_after_intervals "
                                f"({self.late_after_intervals!r}) < offline_after_intervals")

    def replace(self, **changes: Any) -> ApiSettings:
        return dataclasses.replace(self, **changes)


def _key(name: str) -> str:
    return PREFIX + name.upper()


def _int(text: str) -> int:
    return int(text.replace("_", ""))


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


_CASTS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "tokens_file": ("path", Path),
    "max_body_bytes": ("int", _int),
    "max_decompressed_bytes": ("int", _int),
    "max_records": ("int", _int),
    "max_requests": ("int", _int),
    "max_in_flight": ("int", _int),
    "queue_wait_s": ("number", _finite_float),
    "retry_after_s": ("int", _int),
    "body_timeout_s": ("number", _finite_float),
    "max_heartbeat_bytes": ("int", _int),
    "late_after_intervals": ("number", _finite_float),
    "offline_after_intervals": ("number", _finite_float),
}
assert set(_CASTS) == {f.name for f in fields(ApiSettings)}, "every setting needs a cast"


def _from_table(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in table.items():
        where = f"{source}: api.{name}"
        if name not in _CASTS:
            raise SettingsError(where, f"is not a setting (known: {', '.join(sorted(_CASTS))})")
        kind, cast = _CASTS[name]
        ok = {"path": isinstance(value, str), "int": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, int | float) and not isinstance(value, bool)}[kind]
        if not ok:
            raise SettingsError(where, f"has value {value!r}, not a valid {kind}")
        values[name] = cast(value) if kind == "path" else value
    return values


def load_settings(env: Mapping[str, str] | None = None, *, table: Mapping[str, Any] | None = None,
                  table_source: str = "config", **overrides: Any) -> ApiSettings:
    """Build settings: ``overrides`` (typed, e.g. command-line flags) win over ``CAMPUS_API_*`` keys of
    ``env`` (default ``os.environ``), which win over ``table`` (the ``[api]`` table of a config file).

    Raises :class:`SettingsError` naming the key for a bad value or an unknown key.
    """
    values = _from_table(table or {}, table_source)
    origin = {name: f"{table_source}: api.{name}" for name in values}
    source = os.environ if env is None else env
    for key, text in source.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX):].lower()
        if name not in _CASTS:
            raise SettingsError(key, f"is not a setting (known: {', '.join(sorted(map(_key, _CASTS)))})")
        kind, cast = _CASTS[name]
        try:
            values[name] = cast(text.strip())
        except ValueError as exc:
            raise SettingsError(key, f"has value {text!r}, not a valid {kind}") from exc
        origin[name] = key
    for name, value in overrides.items():
        if name not in _CASTS:
            raise SettingsError(_key(name), "is not a setting")
        if value is not None:
            values[name] = value
            origin[name] = f"--{name.replace('_', '-')}"
    try:
        return ApiSettings(**values)
    except SettingsError as exc:  # a range check: name the key where the value came from
        name = exc.key[len(PREFIX):].lower()
        if origin.get(name, exc.key) == exc.key:
            raise
        raise SettingsError(origin[name], exc.problem) from exc

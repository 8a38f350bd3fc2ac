"""Payload parsers for the simple formats: JSON, msgpack, CSV, raw text/number, and binary layouts.

Each parser takes the payload bytes and returns a document (JSON-like value); any problem raises
:class:`DecodeError` with :attr:`Reason.MALFORMED` and a detail saying where. SenML and line protocol
live in their own modules.
"""

from __future__ import annotations

import csv
import io
import struct
from typing import Any

import msgpack
import orjson

from edge_agent.errors import DecodeError
from edge_agent.model import Reason
from edge_agent.profiles.spec import Layout

MAX_CSV_ROWS = 10000  # rows per message; a CSV payload is a handful of readings, not a file dump


def malformed(detail: str) -> DecodeError:
    return DecodeError(Reason.MALFORMED, detail)


def parse_json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise malformed(f"invalid JSON: {exc}") from None


def parse_msgpack(payload: bytes) -> Any:
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types (ExtraData, ValueError, TypeError...)
        raise malformed(f"invalid msgpack: {type(exc).__name__}: {str(exc)[:200]}") from None


def text_of(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise malformed(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_raw(payload: bytes) -> Any:
    """A bare value: ``21.5``, ``ON``, ``true``. Homie sends an empty string as one NUL byte."""
    text = text_of(payload).strip()
    return "" if text == "\x00" else text


def parse_csv(payload: bytes, delimiter: str, columns: tuple[str, ...], header: bool) -> list[dict[str, str]]:
    text = text_of(payload)
    try:
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter, strict=True) if row]
    except csv.Error as exc:
        raise malformed(f"invalid CSV: {exc}") from None
    if header:
        if not rows:
            raise malformed("CSV has no header line")
        columns = tuple(c.strip() for c in rows[0])
        rows = rows[1:]
    if len(rows) > MAX_CSV_ROWS:
        raise malformed(f"CSV has {len(rows)} rows, more than {MAX_CSV_ROWS}")
    out = []
    for i, row in enumerate(rows, 2 if header else 1):
        if len(row) != len(columns):
            raise malformed(
                f"CSV line {i}: {len(row)} fields, expected {len(columns)} ({', '.join(columns)})"
            )
        out.append({c: v.strip() for c, v in zip(columns, row, strict=True)})
    return out


def _read(data: bytes, code: str, pos: int, size: int) -> Any:
    if code == "hex":
        return data[pos : pos + size].hex()
    if code == "u24le":
        return int.from_bytes(data[pos : pos + 3], "little")
    if code == "u24be":
        return int.from_bytes(data[pos : pos + 3], "big")
    return struct.unpack_from(code, data, pos)[0]


def decode_layout(data: bytes, layout: Layout, where: str = "payload") -> dict[str, Any]:
    """Decode ``data`` with a binary layout into ``{field name: value}`` (scaled numbers, hex strings)."""
    out: dict[str, Any] = {}
    n = len(data)
    if layout.kind == "struct":
        for f in layout.fields:
            if f.offset + f.size > n:
                raise malformed(
                    f"{where}: {n} bytes, but field {f.name!r} needs bytes "
                    f"{f.offset}..{f.offset + f.size - 1}"
                )
            out[f.name] = _value(_read(data, f.code, f.offset, f.size), f.scale, f.div)
        return out
    i = 0
    while i < n:
        if i + 2 > n:
            raise malformed(f"{where}: truncated channel header at byte {i} of {n}")
        key = (data[i], data[i + 1])
        spec = layout.channels.get(key)
        if spec is None:
            if layout.on_unknown == "stop":
                break
            raise malformed(
                f"{where}: unknown channel 0x{key[0]:02x} type 0x{key[1]:02x} at byte {i} "
                f"(layout {layout.id})"
            )
        i += 2
        if isinstance(spec, int):
            if i + spec > n:
                raise malformed(
                    f"{where}: channel 0x{key[0]:02x} needs {spec} bytes at byte {i}, {n - i} left"
                )
            i += spec
            continue
        size = sum(f.size for f in spec)
        if i + size > n:
            raise malformed(
                f"{where}: channel 0x{key[0]:02x} type 0x{key[1]:02x} needs {size} bytes at byte {i}, "
                f"{n - i} left"
            )
        for f in spec:
            out[f.name] = _value(_read(data, f.code, i + f.offset, f.size), f.scale, f.div)
        i += size
    return out


def _value(raw: Any, scale: float, div: float) -> Any:
    if isinstance(raw, str) or (scale == 1.0 and div == 1.0):
        return raw
    return raw * scale / div

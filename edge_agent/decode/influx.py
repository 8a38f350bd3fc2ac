"""InfluxDB line protocol (as Telegraf publishes it over MQTT), one record per line.

``measurement[,tag=value...] field=value[,field=value...] [timestamp]``. Measurement names escape
``,`` and space with a backslash; tag keys, tag values and field keys also escape ``=``. Field values
are floats (``1.5``, ``1e3``), integers (``1i``), unsigned integers (``1u``), double-quoted strings
(``\\"`` and ``\\\\`` escapes) or booleans (``t T true True TRUE f F false False FALSE``). The timestamp is
an integer whose precision the profile states (nanoseconds by default). Lines starting with ``#`` are
comments. Each record is ``{"measurement": str, "tags": {..}, "fields": {..}, "time": int | None}``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from edge_agent.decode.formats import malformed, text_of

MAX_LINES = 10000  # lines per message (Telegraf batches are a few hundred lines)
_TRUE = frozenset(("t", "T", "true", "True", "TRUE"))
_FALSE = frozenset(("f", "F", "false", "False", "FALSE"))
_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_INT = re.compile(r"^[-+]?\d+$")


def parse_influx(payload: bytes) -> list[dict[str, Any]]:
    text = text_of(payload)
    out: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        if len(out) >= MAX_LINES:
            raise malformed(f"more than {MAX_LINES} lines")
        out.append(_parse_line(line, lineno))
    if not out:
        raise malformed("no line protocol lines in the payload")
    return out


def _field_value(raw: str, where: str) -> Any:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise malformed(f"{where}: unterminated string")
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if raw.endswith(("i", "u")) and _INT.match(raw[:-1]):
        value = int(raw[:-1])
        if raw.endswith("u") and value < 0:
            raise malformed(f"{where}: unsigned integer {raw!r} is negative")
        return value
    if _FLOAT.match(raw):
        value_f = float(raw)
        if math.isfinite(value_f):
            return value_f
    raise malformed(f"{where}: invalid field value {raw!r}")


def _split(s: str, seps: str, start: int, where: str, *, quotes: bool = False) -> tuple[str, int]:
    """Read from ``start`` up to an unescaped char in ``seps``; returns (token, index of separator)."""
    buf: list[str] = []
    i, n = start, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and (s[i + 1] in seps or s[i + 1] in ",= \\"):
            buf.append(s[i + 1] if s[i + 1] != "\\" or not quotes else "\\\\")
            i += 2
            continue
        if quotes and c == '"':
            j = i + 1
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            if j >= n:
                raise malformed(f"{where}: unterminated string")
            buf.append(s[i : j + 1])
            i = j + 1
            continue
        if c in seps:
            break
        buf.append(c)
        i += 1
    return "".join(buf), i


def _parse_line(line: str, lineno: int) -> dict[str, Any]:
    where = f"line {lineno}"
    simple = "\\" not in line and '"' not in line
    if simple:
        parts = line.split()
        if len(parts) not in (2, 3):
            raise malformed(f"{where}: expected 'measurement[,tags] fields [timestamp]'")
        head, *tag_parts = parts[0].split(",")
        tags = {}
        for t in tag_parts:
            k, eq, v = t.partition("=")
            if not eq or not k or not v:
                raise malformed(f"{where}: invalid tag {t!r}")
            tags[k] = v
        fields_raw = [f.partition("=") for f in parts[1].split(",")]
        stamp = parts[2] if len(parts) == 3 else None
    else:
        head, i = _split(line, ", ", 0, where)
        tags = {}
        while i < len(line) and line[i] == ",":
            k, i = _split(line, "=", i + 1, where)
            if i >= len(line):
                raise malformed(f"{where}: tag {k!r} has no value")
            v, i = _split(line, ", ", i + 1, where)
            if not k or not v:
                raise malformed(f"{where}: empty tag key or value")
            tags[k] = v
        while i < len(line) and line[i] == " ":
            i += 1
        fields_raw = []
        while i < len(line):
            k, i = _split(line, "=", i, where)
            if i >= len(line):
                raise malformed(f"{where}: field {k!r} has no value")
            v, i = _split(line, ", ", i + 1, where, quotes=True)
            fields_raw.append((k, "=", v))
            if i < len(line) and line[i] == ",":
                i += 1
                continue
            break
        rest = line[i:].strip()
        stamp = rest or None
    if not head:
        raise malformed(f"{where}: empty measurement name")
    fields: dict[str, Any] = {}
    for k, eq, v in fields_raw:
        if not eq or not k or v == "":
            raise malformed(f"{where}: invalid field {k + eq + v!r}")
        fields[k] = _field_value(v, f"{where} field {k!r}")
    if not fields:
        raise malformed(f"{where}: no fields")
    time = None
    if stamp is not None:
        if not _INT.match(stamp):
            raise malformed(f"{where}: invalid timestamp {stamp!r}")
        time = int(stamp)
    return {"measurement": head, "tags": tags, "fields": fields, "time": time}

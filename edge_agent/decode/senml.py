"""SenML (RFC 8428) JSON packs, resolved into one flat record per SenML record.

Base fields (``bn``, ``bt``, ``bu``, ``bv``, ``bs``) persist across the following records until changed.
The pre-RFC form ``{"bn": .., "bt": .., "e": [..]}`` (LwM2M drafts) is accepted too. Each resolved
record is a dict with:

``name`` (bn + n), ``bn``, ``n``, ``key`` (the metric key: ``n`` when a base name is set; otherwise
``n`` unless it looks like a full URN, then ""), ``device`` (base name without trailing ``:``/``/``;
or the full name when it is the device's URN; else None), ``u`` (unit, ``bu`` applied), ``t`` (bt + t
in seconds, None when the pack gives no time at all; values below 2**28 are relative to "now" and the
profile says so with ``relative_below``), ``v`` (bv + v), ``vs``, ``vb``, ``vd``, ``s`` (bs + s), ``ut``.
"""

from __future__ import annotations

from typing import Any

import orjson

from edge_agent.decode.formats import malformed

_BASE = ("bn", "bt", "bu", "bv", "bs", "bver")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise malformed(f"{where}: expected a number, got {type(value).__name__}")
    return float(value)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise malformed(f"{where}: expected a string, got {type(value).__name__}")
    return value


def parse_senml(payload: bytes) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise malformed(f"invalid JSON: {exc}") from None
    base: dict[str, Any] = {}
    if isinstance(doc, dict) and isinstance(doc.get("e"), list):  # pre-RFC {"bn":..,"e":[..]}
        base = {k: doc[k] for k in _BASE if k in doc}
        entries = doc["e"]
    elif isinstance(doc, list):
        entries = doc
    else:
        raise malformed('a SenML pack must be a JSON array of records (or the old {"e": [...]} form)')
    bn, bu = "", None
    bt = bv = bs = 0.0
    has_bt = False
    out: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        where = f"records[{i}]"
        if not isinstance(e, dict):
            raise malformed(f"{where}: expected an object, got {type(e).__name__}")
        if i == 0 and base:
            e = {**base, **e}
        if "bn" in e:
            bn = _string(e["bn"], f"{where}.bn")
        if "bt" in e:
            bt, has_bt = _number(e["bt"], f"{where}.bt"), True
        if "bu" in e:
            bu = _string(e["bu"], f"{where}.bu")
        if "bv" in e:
            bv = _number(e["bv"], f"{where}.bv")
        if "bs" in e:
            bs = _number(e["bs"], f"{where}.bs")
        n = _string(e.get("n", ""), f"{where}.n")
        has_t = "t" in e
        t = _number(e["t"], f"{where}.t") if has_t else 0.0
        rec: dict[str, Any] = {
            "name": bn + n,
            "bn": bn,
            "n": n,
            "u": _string(e["u"], f"{where}.u") if "u" in e else bu,
            "t": bt + t if (has_bt or has_t) else None,
        }
        has_value = False
        if "v" in e:
            rec["v"] = bv + _number(e["v"], f"{where}.v")
            has_value = True
        if "s" in e:
            rec["s"] = bs + _number(e["s"], f"{where}.s")
            has_value = True
        if "vs" in e:
            rec["vs"] = _string(e["vs"], f"{where}.vs")
            has_value = True
        if "vb" in e:
            if not isinstance(e["vb"], bool):
                raise malformed(f"{where}.vb: expected true or false")
            rec["vb"] = e["vb"]
            has_value = True
        if "vd" in e:
            rec["vd"] = _string(e["vd"], f"{where}.vd")
            has_value = True
        if "ut" in e:
            rec["ut"] = _number(e["ut"], f"{where}.ut")
        if not has_value:
            continue  # a record carrying only base fields
        if bn:
            rec["key"] = n
            rec["device"] = bn.rstrip(":/") or None
        elif ":" in n:
            rec["key"] = ""
            rec["device"] = n
        else:
            rec["key"] = n
            rec["device"] = None
        out.append(rec)
    return out

"""Field paths into decoded payloads, compiled once at load time into tuples of steps.

Syntax (docs/device-profiles.md, "Paths"): keys separated by ``.``; ``[n]`` indexes an array (negative
counts from the end); ``["key.with.dots"]`` or ``['key']`` quotes a key holding ``.`` or ``[``. Keys may
contain ``:``, spaces and any other character: ``params.switch:0.apower``,
``uplink_message.decoded_payload.Battery Status``, ``SDS0X1["PM2.5"]``. The empty path (``""`` or ``$``)
is the record itself (a bare scalar payload).
"""

from __future__ import annotations

from typing import Any, Final

Step = str | int
Steps = tuple[Step, ...]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final[Any] = _Missing()


class PathError(ValueError):
    """A path string does not follow the syntax; the message says where."""


def parse_path(text: str) -> Steps:
    """Compile ``text`` into steps. Raises :class:`PathError`."""
    if text in ("", "$"):
        return ()
    steps: list[Step] = []
    i, n = 0, len(text)
    expect_key = True  # at start or after '.'
    while i < n:
        c = text[i]
        if c == "[":
            j = text.find("]", i)
            if j < 0:
                raise PathError(f"unclosed '[' at position {i} in {text!r}")
            inner = text[i + 1 : j]
            if inner[:1] in ("'", '"'):
                quote = inner[0]
                end = text.find(quote + "]", i + 2)
                if end < 0:
                    raise PathError(f"unclosed quoted key at position {i} in {text!r}")
                steps.append(text[i + 2 : end])
                i = end + 2
            else:
                try:
                    steps.append(int(inner))
                except ValueError:
                    raise PathError(f"array index {inner!r} is not an integer in {text!r}") from None
                i = j + 1
            expect_key = False
        elif c == ".":
            if expect_key:
                raise PathError(f"empty key at position {i} in {text!r}")
            expect_key = True
            i += 1
        else:
            if not expect_key:
                raise PathError(f"expected '.' or '[' at position {i} in {text!r}")
            j = i
            while j < n and text[j] not in ".[":
                j += 1
            steps.append(text[i:j])
            i = j
            expect_key = False
    if expect_key:
        raise PathError(f"path ends with '.' in {text!r}")
    return tuple(steps)


def format_path(steps: Steps) -> str:
    """Render steps back to path syntax (for messages)."""
    out: list[str] = []
    for s in steps:
        if isinstance(s, int):
            out.append(f"[{s}]")
        elif "." in s or "[" in s or not s:
            out.append(f'["{s}"]')
        else:
            out.append(("." if out else "") + s)
    return "".join(out) or "$"


def get(obj: Any, steps: Steps) -> Any:
    """The value at ``steps`` inside ``obj``, or :data:`MISSING`. Never raises."""
    if len(steps) == 1 and obj.__class__ is dict:  # the hot case: one key of a JSON object (decoder, per metric)
        s0 = steps[0]
        if s0.__class__ is str:
            return obj.get(s0, MISSING)
    for s in steps:
        if s.__class__ is str:
            if isinstance(obj, dict):
                obj = obj.get(s, MISSING)
                if obj is MISSING:
                    return MISSING
            else:
                return MISSING
        elif isinstance(obj, list) and -len(obj) <= s < len(obj):  # type: ignore[operator]
            obj = obj[s]  # type: ignore[index]
        else:
            return MISSING
    return obj


def get_first(obj: Any, alternatives: tuple[Steps, ...]) -> tuple[Any, int]:
    """First present, non-null value among alternative paths, with its index; (MISSING, -1) if none."""
    for i, steps in enumerate(alternatives):
        v = get(obj, steps)
        if v is not MISSING and v is not None:
            return v, i
    return MISSING, -1


def put(obj: Any, steps: Steps, value: Any) -> bool:
    """Set ``value`` at ``steps`` creating intermediate objects; False if a step cannot be followed."""
    if not steps:
        return False
    for s in steps[:-1]:
        if isinstance(s, str) and isinstance(obj, dict):
            nxt = obj.get(s)
            if not isinstance(nxt, dict | list):
                nxt = {}
                obj[s] = nxt
            obj = nxt
        elif isinstance(s, int) and isinstance(obj, list) and -len(obj) <= s < len(obj):
            obj = obj[s]
        else:
            return False
    last = steps[-1]
    if isinstance(last, str) and isinstance(obj, dict):
        obj[last] = value
        return True
    if isinstance(last, int) and isinstance(obj, list) and -len(obj) <= last < len(obj):
        obj[last] = value
        return True
    return False

"""MQTT topic patterns with named placeholders, compiled once into a regex plus an index key.

Levels are separated by ``/`` and are one of:

* a literal (``zigbee2mqtt``, ``switch:0``; may be empty, as in ``/rfid/send``);
* ``+`` — any one level, ``#`` — any number of levels (last level only), as in MQTT filters;
* ``{name}`` — one non-empty level captured as ``name``;
* ``{name+}`` — one or more non-empty levels captured as ``name`` (may sit in the middle:
  ``tele/{device+}/SENSOR``; Zigbee2MQTT friendly names contain ``/``).

``{device}`` is the conventional name of the device id's place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}$")


class TopicPatternError(ValueError):
    """The pattern text is not valid; the message says which level and why."""


@dataclass(slots=True, frozen=True, eq=False)
class TopicPattern:
    """A compiled topic pattern. ``match`` returns the captures or None."""

    text: str
    regex: re.Pattern[str]
    placeholders: tuple[str, ...]
    first_literal: str | None  # the first level when it is a literal (index key), else None
    literal_levels: int  # number of literal levels: more literal = more specific
    exact: bool  # no wildcard at all: can be looked up in a dict

    def match(self, topic: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(topic)
        return None if m is None else m.groupdict()

    def mqtt_filter(self) -> str:
        """The MQTT subscription filter covering this pattern (placeholders become ``+`` or ``#``)."""
        out: list[str] = []
        for level in self.text.split("/"):
            ph = _PLACEHOLDER.match(level)
            if ph and ph.group(2):
                out.append("#")
                break
            if level == "#":
                out.append("#")
                break
            out.append("+" if ph else level)
        return "/".join(out)


def compile_pattern(text: str) -> TopicPattern:
    """Compile a topic pattern. Raises :class:`TopicPatternError` naming the bad level."""
    if not isinstance(text, str) or text == "":
        raise TopicPatternError("topic pattern is empty")
    if "\x00" in text:
        raise TopicPatternError("topic pattern contains a NUL character")
    levels = text.split("/")
    parts: list[str] = []
    names: list[str] = []
    literal = 0
    exact = True
    for i, level in enumerate(levels):
        if level == "#":
            if i != len(levels) - 1:
                raise TopicPatternError(f"level {i + 1}: '#' must be the last level")
            exact = False
            parts.append("#")
            continue
        if level == "+":
            exact = False
            parts.append("[^/]*")
            continue
        ph = _PLACEHOLDER.match(level)
        if ph:
            name, multi = ph.group(1), ph.group(2)
            if name in names:
                raise TopicPatternError(f"level {i + 1}: placeholder {{{name}}} is used twice")
            names.append(name)
            exact = False
            parts.append(f"(?P<{name}>[^/]+(?:/[^/]+)*)" if multi else f"(?P<{name}>[^/]+)")
            continue
        if "{" in level or "}" in level:
            raise TopicPatternError(
                f"level {i + 1}: {level!r} is not a placeholder; write {{name}} or {{name+}} as a whole level"
            )
        if "+" in level or "#" in level:
            raise TopicPatternError(f"level {i + 1}: '+' and '#' must occupy a whole level, not {level!r}")
        literal += 1
        parts.append(re.escape(level))
    if parts[-1] == "#":
        head = "/".join(parts[:-1])
        body = f"{head}(?:/.*)?" if len(parts) > 1 else ".*"
    else:
        body = "/".join(parts)
    first = levels[0] if levels[0] not in ("+", "#") and not _PLACEHOLDER.match(levels[0]) else None
    return TopicPattern(text, re.compile(body, re.DOTALL), tuple(names), first, literal, exact)


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be a published MQTT topic name, or None when it is fine."""
    if not topic:
        return "topic is empty"
    if "+" in topic or "#" in topic:
        return "topic contains a wildcard character ('+' or '#')"
    if "\x00" in topic:
        return "topic contains a NUL character"
    if len(topic.encode("utf-8", "surrogatepass")) > 65535:
        return "topic is longer than 65535 bytes"
    return None


def topic_group(topic: str) -> str:
    """A low-cardinality key for counting unmatched topics: first level literal, then ``+`` per level.

    ``zigbee2mqtt/kitchen`` -> ``zigbee2mqtt/+``; more than four levels end in ``/#``.
    """
    levels = topic.split("/")
    head = levels[0][:64]
    n = len(levels)
    if n > 4:
        return head + "/+/+/+/#"
    return head + "/+" * (n - 1)

"""Strict YAML reading for profile files: YAML 1.2 booleans, no duplicate keys, line numbers for errors.

PyYAML implements YAML 1.1, where ``ON``, ``off``, ``yes`` and ``no`` are booleans. Device payloads use
exactly those words as states (Zigbee2MQTT ``"state": "ON"``), so a profile author writing
``map: {ON: 1}`` would silently get the key ``True``. This loader only treats ``true``/``false`` as
booleans, as YAML 1.2 does, and refuses duplicate mapping keys instead of keeping the last one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

_BOOL_TAG = "tag:yaml.org,2002:bool"


class StrictLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """SafeLoader with YAML 1.2 booleans and duplicate-key detection."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys
            if key in seen:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen[key] = key_node
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(slots=True, frozen=True)
class YamlDoc:
    """A parsed YAML document plus its node tree (to turn a field path into a line number)."""

    data: Any
    node: Node | None

    def line_of(self, loc: tuple[str | int, ...]) -> int | None:
        """1-based line of the value at ``loc`` (or of the nearest existing parent), None if unknown."""
        node = self.node
        if node is None:
            return None
        line: int = node.start_mark.line + 1
        for step in loc:
            nxt: Node | None = None
            if isinstance(node, MappingNode):
                for key_node, value_node in node.value:
                    if getattr(key_node, "value", None) == str(step):
                        nxt = value_node
                        line = key_node.start_mark.line + 1
                        break
            elif isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
                nxt = node.value[step]
                line = nxt.start_mark.line + 1
            if nxt is None:
                return line
            node = nxt
        return line


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; ``line`` is 1-based when known."""

    def __init__(self, problem: str, line: int | None) -> None:
        self.problem = problem
        self.line = line
        super().__init__(problem if line is None else f"{problem} (line {line})")


def load_yaml(text: str) -> YamlDoc:
    """Parse one YAML document strictly. Raises :class:`YamlSyntaxError`."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSyntaxError(f"invalid YAML: {problem}", mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"invalid YAML: {exc}", None) from exc
    finally:
        loader.dispose()
    return YamlDoc(data, node)

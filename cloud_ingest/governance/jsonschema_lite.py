"""A small JSON Schema subset validator, enough for the catalog's schema (no third-party dependency).

Supported keywords: ``type`` (object, array, string, integer, number, boolean, null), ``required``,
``properties``, ``additionalProperties`` (boolean), ``items``, ``enum``, ``minItems``, ``minLength``,
``pattern``. :func:`validate` returns every violation as ``"<json path>: <problem>"``; empty means valid.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {"object": (dict,), "array": (list,), "string": (str,),
                                       "integer": (int,), "number": (int, float), "boolean": (bool,),
                                       "null": (type(None),)}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def validate(doc: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``doc``."""
    errors: list[str] = []
    want = schema.get("type")
    if want is not None and not _is(doc, want):
        return [f"{path}: expected {want}, got {type(doc).__name__}"]
    if "enum" in schema and doc not in schema["enum"]:
        errors.append(f"{path}: {doc!r} is not one of {schema['enum']}")
    if isinstance(doc, str):
        if len(doc) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], doc):
            errors.append(f"{path}: {doc!r} does not match {schema['pattern']}")
    if isinstance(doc, list):
        if len(doc) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(doc):
                errors += validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(doc, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in doc:
                errors.append(f"{path}: missing required {key!r}")
        if schema.get("additionalProperties", True) is False:
            errors += [f"{path}: unexpected property {k!r}" for k in doc if k not in props]
        for key, sub in props.items():
            if key in doc:
                errors += validate(doc[key], sub, f"{path}.{key}")
    return errors

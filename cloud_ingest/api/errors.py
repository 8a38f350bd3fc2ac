"""Exception tree of the ingest API.

    ApiError                     anything the API refuses on purpose at startup
    ├── SettingsError            a setting has a bad value (message names the key and the value)
    └── TokenFileError           the tokens file is unreadable or invalid (message names file, key, problem)

Request-time refusals are not exceptions of this tree: they are :class:`Problem` values, turned into the
JSON error body ``{"error": {"code", "field", "detail"}}`` by the app's exception handler.
"""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """Root of every error the ingest API raises on purpose."""


class SettingsError(ApiError):
    """A setting is missing or has a value of the wrong type or range; ``key`` names it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key} {problem}")


class TokenFileError(ApiError):
    """The tokens file is invalid: ``str(err)`` reads ``"<file>: <key>: <problem>"``."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


class Problem(Exception):  # a response value raised to unwind a handler, not a failure
    """An HTTP refusal with a machine-readable ``code``; raised inside handlers, rendered as JSON.

    ``field`` names the offending part of the input when there is one (wire header field, JSON path).
    ``detail`` is for people and never contains secrets or more than a truncated piece of the input.
    """

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})
        super().__init__(f"HTTP {status} {code}: {detail}")

    def __repr__(self) -> str:
        return f"Problem({self.status}, {self.code!r}, {self.detail!r}, field={self.field!r})"

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"code": self.code, "field": self.field, "detail": self.detail}}

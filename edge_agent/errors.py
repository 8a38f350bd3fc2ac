"""Exception tree of the edge agent.

    EdgeAgentError
    ├── ProfileError          a device profile is invalid (message names file, field, reason)
    ├── DecodeError           one message cannot be decoded (carries a reason code, see model.Reason)
    ├── BufferError_          the durable buffer refuses (corrupt file, no WAL, budget exhausted)
    │   └── BackPressure      nothing can be evicted: stop acknowledging
    ├── WireError             a batch cannot be encoded/decoded (field, reason)
    └── UploadError           uploading a batch failed
        └── UploadRejected    the server refused the batch (status, reason)

Third-party errors are translated once, at the boundary, with ``raise ... from exc``.
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Root of every error the edge agent raises on purpose."""


class ProfileError(EdgeAgentError):
    """A device profile is invalid.

    ``str(err)`` reads ``"<file>: <field.path>: <problem>"``.
    """

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        super().__init__(f"{file}: {field}: {problem}" if field else f"{file}: {problem}")


class DecodeError(EdgeAgentError):
    """A message could not be decoded; ``reason`` is a :class:`edge_agent.model.Reason` code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class BufferError_(EdgeAgentError):  # trailing underscore: do not shadow the builtin BufferError
    """The durable buffer cannot do what was asked (the message says which file and why)."""


class BackPressure(BufferError_):
    """The disk budget is full and nothing more can be evicted: stop acknowledging messages."""


class WireError(EdgeAgentError):
    """A batch is not valid wire format; ``field`` names the offending part."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class UploadError(EdgeAgentError):
    """Uploading a batch failed (network, timeout, server error)."""


class UploadRejected(UploadError):
    """The server answered with a status that says the batch itself is wrong."""

    def __init__(self, status: int, reason: str, batch_seq: int) -> None:
        self.status = status
        self.reason = reason
        self.batch_seq = batch_seq
        super().__init__(f"batch {batch_seq} rejected with HTTP {status}: {reason}")

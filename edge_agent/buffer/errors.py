"""Errors of the durable buffer, below :class:`edge_agent.errors.BufferError_`.

    BufferError_                 (edge_agent.errors)
    ├── BufferCorrupt            the file is not a usable SQLite buffer: names the file and what was found
    ├── BufferNotWal             the file cannot be put in WAL mode
    └── BackPressure             (edge_agent.errors) the disk budget is full and nothing can be evicted
"""

from __future__ import annotations

from edge_agent.errors import BufferError_


class BufferCorrupt(BufferError_):
    """The buffer file is damaged or is not a buffer; ``found`` says what the checks saw."""

    def __init__(self, path: str, found: str, hint: str = "") -> None:
        self.path = path
        self.found = found
        msg = f"{path}: refusing to open the buffer: {found}"
        super().__init__(f"{msg}; {hint}" if hint else msg)

    def __repr__(self) -> str:
        return f"BufferCorrupt(path={self.path!r}, found={self.found!r})"


class BufferNotWal(BufferError_):
    """The file (or its file system) does not support SQLite's write-ahead log."""

    def __init__(self, path: str, got: str) -> None:
        self.path = path
        self.got = got
        super().__init__(
            f"{path}: refusing to open the buffer: journal_mode=WAL is not available (SQLite answered "
            f"{got!r}); put the buffer on a local file system the agent can write, "
            "with its directory writable"
        )

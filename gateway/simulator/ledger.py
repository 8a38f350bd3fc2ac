"""The ledger file: one JSON line per published message and per fault that sent nothing.

Lines, in publishing order:

- a header ``{"ledger": "campus-sim", "version": 1, "seed": .., "start_ms": .., ...}``;
- per message ``{"seq": n, "topic": .., "device": .., "type": .., "profile": .., "ts_ms": ..,
  "bytes": .., "readings": [[metric, ts_ms, value], ...], "events": [...], "waveforms": [...],
  "fault": kind, "detail": ..}`` (``fault``/``detail`` only on faulty messages; ``readings`` are in
  canonical units and are what the message must decode to);
- per gap or counter rollover ``{"fault": "gaps" | "rollover", "device": .., "ts_ms": .., "seq": null,
  "detail": ..}``;
- a trailer ``{"summary": {...}}``.

A checker can so verify that every published reading reached the warehouse, and tell the faults
apart from losses.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from gateway.simulator.faults import FaultRecord
from gateway.simulator.model import SimMessage

LEDGER_VERSION = 1


class Ledger:
    """Appends ledger lines to a file (buffered; flushed on close)."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self._fh: IO[bytes] = path.open("wb")
        self._write({"ledger": "campus-sim", "version": LEDGER_VERSION, **header})
        self.lines = 1

    def _write(self, obj: dict[str, Any]) -> None:
        self._fh.write(orjson.dumps(obj) + b"\n")

    def message(self, msg: SimMessage) -> None:
        self._write(msg.ledger_record())
        self.lines += 1

    def record(self, rec: FaultRecord) -> None:
        self._write(rec.as_dict())
        self.lines += 1

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self._fh.closed:
            return
        if summary is not None:
            self._write({"summary": summary})
        self._fh.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """All lines of a ledger file as dicts (for checkers and tests)."""
    with path.open("rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]

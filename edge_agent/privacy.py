"""Protection of personal data on the edge: keyed-hash pseudonyms, truncation, dropping.

A card number must never leave the gateway, yet the warehouse must still count swipes per card.
:class:`Pseudonymizer` replaces a value with ``"<key id>:<16 hex>"``, the first 64 bits of
HMAC-SHA256(campus key, value): the same card gives the same pseudonym on every gateway of the campus
(joinable), nobody without the key can compute it from a card number (not reversible by brute force
over the small card-number space, unlike a plain hash).

Key file (one per campus, distributed to its gateways, mode 0600)::

    # <key id> <key as hex, at least 32 bytes>
    p1 6f1c...e2
    p2 9a0b...41     <- the last key is the current one

Rotation: append a new line. Pseudonyms carry the key id, so the warehouse knows which ones are
comparable; older keys stay in the file so :meth:`Pseudonymizer.pseudonym_with` can re-link history.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_agent.errors import EdgeAgentError

_LOGGER = logging.getLogger(__name__)

MIN_KEY_BYTES = 32  # HMAC-SHA256 keys shorter than the hash output weaken it
HEX_CHARS = 16  # 64 bits of pseudonym: collisions are negligible below ~10^8 distinct cards per campus
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


class KeyFileError(EdgeAgentError):
    """The pseudonymisation key file is missing or invalid; the message names the file, line and reason."""


def normalize(value: Any) -> str:
    """The text that is hashed: integral floats lose their ``.0`` (ChirpStack sends ints as floats)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class Pseudonymizer:
    """HMAC-SHA256 pseudonyms with key ids; build with :meth:`from_file` (or the constructor in tests)."""

    __slots__ = ("_keys", "key_id")

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise KeyFileError(f"current key id {current!r} is not among the keys")
        for kid, key in keys.items():
            if not _KEY_ID.match(kid):
                raise KeyFileError(f"key id {kid!r} must be 1-16 characters of A-Z a-z 0-9 _ -")
            if len(key) < MIN_KEY_BYTES:
                raise KeyFileError(f"key {kid!r} has {len(key)} bytes, at least {MIN_KEY_BYTES} are needed")
        self._keys = dict(keys)
        self.key_id = current

    @classmethod
    def from_file(cls, path: str | Path) -> Pseudonymizer:
        """Read a key file (format in the module docstring). Raises :class:`KeyFileError`."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            mode = p.stat().st_mode
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot read the key file: {exc.strerror or exc}") from exc
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            _LOGGER.warning(
                "key file %s is accessible to other users (mode %o); chmod 600 it", path, mode & 0o777
            )
        return cls.from_text(text, source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str = "<key text>") -> Pseudonymizer:
        keys: dict[str, bytes] = {}
        current = None
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise KeyFileError(f"{source}: line {lineno}: expected '<key id> <hex key>'")
            kid, hex_key = parts
            if kid in keys:
                raise KeyFileError(f"{source}: line {lineno}: key id {kid!r} appears twice")
            try:
                keys[kid] = bytes.fromhex(hex_key)
            except ValueError:
                raise KeyFileError(f"{source}: line {lineno}: the key of {kid!r} is not hex") from None
            current = kid
        if current is None:
            raise KeyFileError(f"{source}: no key in the file")
        try:
            return cls(keys, current)
        except KeyFileError as exc:
            raise KeyFileError(f"{source}: {exc}") from None

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def pseudonym(self, value: Any) -> str:
        """``"<current key id>:<16 hex>"`` for ``value`` (see :func:`normalize`)."""
        return self.pseudonym_with(self.key_id, value)

    def pseudonym_with(self, key_id: str, value: Any) -> str:
        """The pseudonym under an older key, to re-link records across a rotation."""
        digest = hmac.new(self._keys[key_id], normalize(value).encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{key_id}:{digest[:HEX_CHARS]}"

    @staticmethod
    def truncate(value: Any, keep: int) -> str:
        """The first ``keep`` characters (for values whose prefix is useful and not identifying)."""
        return normalize(value)[:keep]

    def protect(self, method: str, value: Any, keep: int = 4) -> Any:
        """Apply a profile's protection: ``hash``, ``truncate``, ``drop`` (None) or ``none`` (as is)."""
        if value is None or method == "none":
            return value
        if method == "hash":
            return self.pseudonym(value)
        if method == "truncate":
            return self.truncate(value, keep)
        if method == "drop":
            return None
        raise ValueError(f"unknown protection {method!r}")

    def __repr__(self) -> str:  # never show key material
        return f"<Pseudonymizer current={self.key_id} keys={list(self._keys)}>"

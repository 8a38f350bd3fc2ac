"""Bearer tokens for gateways and operators, checked against a file of token *hashes* (never plaintext).

The tokens file is YAML (``.yaml``/``.yml``) or TOML (``.toml``)::

    [gateways]                      # a gateway may upload and heartbeat as itself, and read its own status
    campus-a-gw1 = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    campus-b-gw1 = ["sha256:<new>", "sha256:<old>"]   # several hashes: rotate without downtime

    [operators]                     # optional: may read the whole fleet
    noc = "sha256:…"

    [readers.energy-dashboard]      # optional: may read ADS indicators up to its role's classification level
    role = "analyst"                # public_viewer (L1), analyst (L2), data_steward (L3), security_admin (L4)
    token = "sha256:…"              # or a list of hashes

A file without a ``gateways`` table is read as gateways only (``gateway id -> hash`` at the top level).

A token is a random secret of at least 128 bits (``secrets.token_urlsafe(32)``), so one SHA-256 is a
sufficient hash: there is nothing to brute-force. A lookup hashes the presented token and looks the digest
up, so the time taken does not depend on how much of a stored hash matches. Tokens are never logged; the
name a token belongs to is.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from cloud_ingest.api.errors import TokenFileError
from cloud_ingest.governance import ROLE_MAX_LEVEL

Role = Literal["gateway", "operator", "reader"]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_HASH_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
MAX_TOKEN_CHARS = 512  # longer Authorization values are refused before hashing
_SECTIONS: dict[str, Role] = {"gateways": "gateway", "operators": "operator", "readers": "reader"}


def hash_token(token: str) -> str:
    """The form stored in the tokens file: ``"sha256:<hex digest of the UTF-8 token>"``."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token belongs to."""

    name: str
    role: Role
    access_role: str | None = None  # readers: the classification role (see cloud_ingest.governance)


@dataclass(frozen=True, slots=True)
class TokenStore:
    """Digest -> principal. Build with :meth:`from_file` or :meth:`from_hashes`."""

    by_digest: Mapping[str, Principal]
    source: str = "<memory>"

    @property
    def gateways(self) -> tuple[str, ...]:
        """Every gateway id that has a token, sorted."""
        return tuple(sorted({p.name for p in self.by_digest.values() if p.role == "gateway"}))

    @classmethod
    def from_hashes(cls, gateways: Mapping[str, Any], operators: Mapping[str, Any] | None = None,
                    source: str = "<memory>", readers: Mapping[str, Any] | None = None) -> TokenStore:
        """Validate ``{name: hash | [hash, ...]}`` tables (readers: ``{name: {role, token}}``); raise
        :class:`TokenFileError` naming the key."""
        by_digest: dict[str, Principal] = {}
        for section, table in (("gateways", gateways), ("operators", operators or {}), ("readers", readers or {})):
            role = _SECTIONS[section]
            for name, value in table.items():
                key = f"{section}.{name}"
                if not isinstance(name, str) or not NAME_RE.match(name):
                    raise TokenFileError(source, key, "not a valid id (letters, digits, '._:-', at most 128)")
                access_role = None
                if role == "reader":
                    if not isinstance(value, Mapping) or set(value) != {"role", "token"}:
                        raise TokenFileError(source, key, "must be a table with exactly 'role' and 'token'")
                    access_role = value["role"]
                    if access_role not in ROLE_MAX_LEVEL:
                        raise TokenFileError(source, f"{key}.role", f"{access_role!r} is not one of "
                                             f"{', '.join(ROLE_MAX_LEVEL)}")
                    value = value["token"]
                items = value if isinstance(value, list) else [value]
                if not items:
                    raise TokenFileError(source, key, "needs at least one token hash")
                for item in items:
                    match = _HASH_RE.match(item) if isinstance(item, str) else None
                    if match is None:
                        raise TokenFileError(source, key, "not a token hash: expected 'sha256:<64 lowercase "
                                             "hex digits>' (see cloud_ingest.api.auth.hash_token)")
                    principal = Principal(name, role, access_role)
                    other = by_digest.setdefault(match.group(1), principal)
                    if other != principal:
                        raise TokenFileError(source, key, f"has the same token hash as {other.role} "
                                             f"{other.name!r}")
        return cls(by_digest, source)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        """Read a YAML or TOML tokens file (format chosen by suffix); see the module docstring."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenFileError(str(file), "", f"cannot read: {exc.strerror}") from exc
        data: Any
        if file.suffix == ".toml":
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise TokenFileError(str(file), "", f"not valid TOML: {exc}") from exc
        elif file.suffix in (".yaml", ".yml"):
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise TokenFileError(str(file), "", f"not valid YAML: {exc}") from exc
        else:
            raise TokenFileError(str(file), "", "unknown suffix: use .toml, .yaml or .yml")
        if not isinstance(data, Mapping):
            raise TokenFileError(str(file), "", "must be a table of gateway id -> token hash")
        if "gateways" not in data:
            return cls.from_hashes(data, None, str(file))
        for key, table in data.items():
            if key not in _SECTIONS:
                raise TokenFileError(str(file), str(key), "unknown table (allowed: gateways, operators, readers)")
            if not isinstance(table, Mapping):
                raise TokenFileError(str(file), key, "must be a table of id -> token hash")
        return cls.from_hashes(data["gateways"], data.get("operators"), str(file), data.get("readers"))

    def principal_for(self, authorization: str | None) -> Principal | None:
        """Who owns the token in ``authorization`` (``"Bearer <token>"``), or None.

        None means: no header, another scheme, an empty or oversized token, or an unknown token.
        """
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
            return None
        return self.by_digest.get(hashlib.sha256(token.encode("utf-8")).hexdigest())

"""Gateway configuration: one TOML file parsed once at start-up into frozen dataclasses.

Every error names the key and the value: ``ConfigError("upload.timeout_s: 'abc' is not a number")``.
Relative paths are resolved against the config file's directory (state files against ``state_dir``).
``campus-edge init-config`` prints ``config_example.toml``, which documents every key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge_agent.errors import EdgeAgentError
from edge_agent.mqtt import MqttSettings

EXAMPLE_PATH = Path(__file__).with_name("config_example.toml")


class ConfigError(EdgeAgentError):
    """The configuration is invalid; the message names the file, the key and the problem."""


@dataclass(frozen=True, slots=True)
class BufferConfig:
    path: Path
    disk_budget_bytes: int
    quarantine_payload_cap: int
    retention_hours: float


@dataclass(frozen=True, slots=True)
class UploadConfig:
    url: str
    token: str = field(repr=False)
    batch_max_readings: int
    batch_max_age_s: float
    timeout_s: float
    max_body_bytes: int


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    source: Path
    gateway_id: str
    campus: str
    state_dir: Path
    profiles_dir: Path
    device_map: Mapping[str, str]
    mqtt: MqttSettings
    buffer: BufferConfig
    upload: UploadConfig
    key_file: Path
    max_clock_skew_ms: int
    allowed_lateness_ms: int
    heartbeat_interval_s: float
    silent_factor: float
    http_host: str
    http_port: int
    stall_after_s: float
    pipeline_stall_s: float = 15.0
    timezone: str = "UTC"


class _Section:
    """Typed access to one TOML table; every error names ``section.key``."""

    def __init__(self, file: Path, name: str, data: Mapping[str, Any], allowed: set[str]) -> None:
        self.file, self.name, self.data = file, name, data
        unknown = sorted(set(data) - allowed)
        if unknown:
            self.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def fail(self, key: str, problem: str) -> None:
        raise ConfigError(f"{self.file}: {self.name}.{key}: {problem}")

    def get(self, key: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                self.fail(key, "is required")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(key, f"{value!r} is not a {kind.__name__}")
        return value

    def positive(self, key: str, kind: type, default: Any) -> Any:
        value = self.get(key, kind, default)
        if value <= 0:
            self.fail(key, f"{value!r} must be > 0")
        return value


def _read_secret(section: _Section, key: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        section.fail(key, f"cannot read {path}: {exc.strerror}")
        raise AssertionError("unreachable") from exc


def load_config(path: str | Path, *, require_secrets: bool = True) -> GatewayConfig:
    """Parse and validate the config file; raise :class:`ConfigError` naming the key on any problem."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    return parse_config(raw, file, require_secrets=require_secrets)


def parse_config(raw: Mapping[str, Any], file: Path, *, require_secrets: bool = True) -> GatewayConfig:
    sections = {"gateway", "device_map", "mqtt", "buffer", "reduce", "upload", "privacy", "heartbeat", "http"}
    for name in raw:
        if name not in sections:
            raise ConfigError(f"{file}: {name}: unknown section (allowed: {', '.join(sorted(sections))})")
    base = file.resolve().parent

    def sect(name: str, allowed: set[str]) -> _Section:
        data = raw.get(name, {})
        if not isinstance(data, Mapping):
            raise ConfigError(f"{file}: {name}: must be a table")
        return _Section(file, name, data, allowed)

    g = sect("gateway", {"id", "campus", "state_dir", "profiles_dir", "timezone"})
    timezone = g.get("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        g.fail("timezone", f"{timezone!r} is not a known IANA time zone (e.g. 'Asia/Shanghai')")
    gateway_id = g.get("id", str, required=True)
    if not gateway_id or "/" in gateway_id or len(gateway_id) > 64:
        g.fail("id", f"{gateway_id!r} must be 1-64 characters without '/'")
    state_dir = base / g.get("state_dir", str, "./state")
    profiles_dir = base / g.get("profiles_dir", str, "./device_profiles")

    dm = raw.get("device_map", {})
    if not isinstance(dm, Mapping) or not all(isinstance(v, str) for v in dm.values()):
        raise ConfigError(f"{file}: device_map: must map device ids to profile id strings")

    m = sect("mqtt", {"host", "port", "client_id", "topics", "qos", "keepalive_s", "username",
                      "password_file", "tls_ca_file", "tls_cert_file", "tls_key_file"})
    topics = m.get("topics", list, ["#"])
    if not topics or not all(isinstance(t, str) for t in topics):
        m.fail("topics", "must be a non-empty list of topic filters")
    password = None
    if "password_file" in m.data:
        password = _read_secret(m, "password_file", base / m.get("password_file", str)) if require_secrets \
            else None
    try:
        mqtt = MqttSettings(
            host=m.get("host", str, "127.0.0.1"), port=m.positive("port", int, 1883),
            client_id=m.get("client_id", str, f"campus-edge-{gateway_id}"), topics=tuple(topics),
            qos=m.get("qos", int, 1), keepalive_s=m.positive("keepalive_s", int, 30),
            username=m.get("username", str), password=password,
            tls_ca_file=m.get("tls_ca_file", str), tls_cert_file=m.get("tls_cert_file", str),
            tls_key_file=m.get("tls_key_file", str),
        )
    except ValueError as exc:
        raise ConfigError(f"{file}: {exc}") from exc

    b = sect("buffer", {"file", "disk_budget_mb", "quarantine_payload_cap", "retention_hours"})
    buffer = BufferConfig(
        path=state_dir / b.get("file", str, "buffer.sqlite"),
        disk_budget_bytes=int(b.positive("disk_budget_mb", float, 512.0) * 1024 * 1024),
        quarantine_payload_cap=b.positive("quarantine_payload_cap", int, 4096),
        retention_hours=b.positive("retention_hours", float, 72.0),
    )

    r = sect("reduce", {"max_clock_skew_s", "allowed_lateness_s"})
    u = sect("upload", {"url", "token_file", "batch_max_readings", "batch_max_age_s", "timeout_s",
                        "max_body_mb"})
    url = u.get("url", str, "http://127.0.0.1:8080").rstrip("/")
    if not url.startswith(("http://", "https://")):
        u.fail("url", f"{url!r} must start with http:// or https://")
    token_path = state_dir / u.get("token_file", str, "gateway.token")
    upload = UploadConfig(
        url=url, token="",
        batch_max_readings=u.positive("batch_max_readings", int, 20000),
        batch_max_age_s=u.positive("batch_max_age_s", float, 1.0),
        timeout_s=u.positive("timeout_s", float, 10.0),
        max_body_bytes=int(u.positive("max_body_mb", float, 8.0) * 1024 * 1024),
    )
    p = sect("privacy", {"key_file"})
    h = sect("heartbeat", {"interval_s", "silent_factor"})
    w = sect("http", {"listen", "stall_after_s", "pipeline_stall_s"})
    listen = w.get("listen", str, "127.0.0.1:9108")
    host, _, port_s = listen.rpartition(":")
    if not host or not port_s.isdigit():
        w.fail("listen", f"{listen!r} is not HOST:PORT")
    if require_secrets:  # read secrets only once every key is known to be valid
        upload = dataclasses.replace(upload, token=_read_secret(u, "token_file", token_path))
    return GatewayConfig(
        source=file, gateway_id=gateway_id, campus=g.get("campus", str, "campus"), state_dir=state_dir,
        profiles_dir=profiles_dir, device_map=dict(dm), mqtt=mqtt, buffer=buffer, upload=upload,
        key_file=state_dir / p.get("key_file", str, "campus.key"),
        max_clock_skew_ms=int(r.positive("max_clock_skew_s", float, 300.0) * 1000),
        allowed_lateness_ms=int(r.positive("allowed_lateness_s", float, 120.0) * 1000),
        heartbeat_interval_s=h.positive("interval_s", float, 30.0),
        silent_factor=h.positive("silent_factor", float, 3.0),
        http_host=host, http_port=int(port_s), stall_after_s=w.positive("stall_after_s", float, 300.0),
        pipeline_stall_s=w.positive("pipeline_stall_s", float, 15.0), timezone=timezone,
    )

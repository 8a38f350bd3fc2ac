"""``campus-edge status``: the running daemon's ``/status``, printed for a person (or as JSON)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from gateway.config import ConfigError, load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show the running daemon's status",
                       description="Fetch /status from the running daemon and print it.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--config", help="gateway configuration (the endpoint is read from [http] listen)")
    g.add_argument("--url", help="status endpoint base URL (default http://127.0.0.1:9108)")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    base = args.url or "http://127.0.0.1:9108"
    if args.config:
        try:
            cfg = load_config(args.config, require_secrets=False)
        except ConfigError as exc:
            sys.stderr.write(f"campus-edge: {exc}\n")
            return 2
        base = f"http://{cfg.http_host}:{cfg.http_port}"
    try:
        r = _httpx().get(f"{base.rstrip('/')}/status", timeout=5.0)
        r.raise_for_status()
    except _httpx().HTTPError as exc:
        sys.stderr.write(f"campus-edge: cannot reach the daemon at {base}: {exc}\n")
        return 1
    data = r.json()
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n" if args.json else render(data))
    return 0


def render(s: dict[str, Any]) -> str:
    m, i, b, u, d = s["mqtt"], s["ingest"], s["backlog"], s["upload"], s["disk"]
    lines = [
        f"gateway {s['gateway']} (campus {s['campus']}), agent {s['agent_version']}, up {s['uptime_s']:.0f} s",
        f"  mqtt      {'connected' if m['connected'] else 'DISCONNECTED'}; received {m['received']}, "
        f"acked {m['acked']}, waiting {m['pending']}" + (f"; last error: {m['last_error']}" if m["last_error"] else ""),
        f"  ingest    {i['messages']} messages -> {i['readings']} readings, {i['events']} events, "
        f"{i['quarantined']} quarantined" + ("; BACK-PRESSURE (not acknowledging)" if i["back_pressure"] else ""),
        f"  backlog   {b['readings']} readings, {b['events']} events in {b['batches']} batches ({b['bytes']} B); "
        f"oldest unsent {b['oldest_unsent_age_s'] or 0:.0f} s; dead letters {b['dead_letters']}",
        f"  upload    sent {u['sent']} batches ({u['readings_sent']} readings), retries {u['retries']}"
        + (f"; STALLED: {u['last_error']}" if u["stalled"] else ""),
        f"  disk      {d['used_bytes'] / 1e6:.1f} MB of {d['budget_bytes'] / 1e6:.0f} MB ({d['used_ratio']:.0%})",
        f"  devices   {s['devices']['tracked']} seen, {s['devices']['silent']} silent",
        f"  profiles  {s['profiles']['count']} loaded" + (f"; RELOAD ERROR: {s['profiles']['reload_error']}"
                                                          if s["profiles"]["reload_error"] else ""),
        f"  clock     offset to cloud: {s['clock_offset_to_cloud_ms']} ms",
    ]
    for title, key in (("quarantined", "quarantined_by_reason"), ("evicted", "evicted")):
        if s[key]:
            lines.append(f"  {title:<9} " + ", ".join(f"{k}={v}" for k, v in sorted(s[key].items())))
    for dev in s["devices"]["silent_list"][:10]:
        lines.append(f"    silent: {dev['device']} ({dev['profile']}) for {dev['silent_s']:.0f} s")
    return "\n".join(lines) + "\n"


def _httpx() -> Any:
    """httpx, imported when this command runs (through the uploader, which keeps httpx's own CLI unloaded)."""
    import edge_agent.upload  # noqa: F401 - imports httpx without its CLI (see edge_agent/upload/uploader.py)

    return sys.modules["httpx"]

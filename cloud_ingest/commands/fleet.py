"""``campus-cloud fleet``: every gateway's state (online / late / offline), backlog and last upload."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

import httpx


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fleet", help="show every gateway's state from a running ingest API",
                       description="Fetch GET /v1/fleet (or /v1/fleet/GATEWAY) from a running campus-cloud serve "
                                   "and print it. Needs an operator token (or the gateway's own for one gateway).")
    p.add_argument("gateway", nargs="?", help="show one gateway only")
    p.add_argument("--url", default=os.environ.get("CAMPUS_API_URL", "http://127.0.0.1:8080"),
                   help="API base URL (default $CAMPUS_API_URL or http://127.0.0.1:8080)")
    p.add_argument("--token-file", help="file holding the bearer token (default: $CAMPUS_API_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    p.set_defaults(func=run)


def _when(ms: int | None, now_ms: int) -> str:
    if not ms:
        return "never"
    return f"{(now_ms - ms) / 1000:.0f} s ago"


def render(data: dict[str, Any]) -> str:
    now = int(data.get("now_ms") or dt.datetime.now(dt.UTC).timestamp() * 1000)
    gws = data.get("gateways", [data])
    head = f"{'gateway':<20} {'state':<8} {'heartbeat':>12} {'last upload':>12} {'backlog':>9} {'oldest':>8} " \
           f"{'clock off':>10} {'devices on/silent':>18}"
    lines = [head, "-" * len(head)]
    for g in gws:
        lines.append(
            f"{g['gateway']:<20} {g['state']:<8} {_when(g.get('last_heartbeat_ms'), now):>12} "
            f"{_when(g.get('last_upload_ms'), now):>12} {g.get('backlog_readings') or 0:>9} "
            f"{(g.get('oldest_unsent_age_s') or 0):>7.0f}s {g.get('clock_offset_ms') or 0:>8}ms "
            f"{g.get('devices_online') or 0:>9}/{g.get('devices_silent') or 0:<8}")
    if "counts" in data:
        lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in data["counts"].items()))
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    token = os.environ.get("CAMPUS_API_TOKEN", "")
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            sys.stderr.write(f"campus-cloud: --token-file {args.token_file}: {exc.strerror}\n")
            return 2
    if not token:
        sys.stderr.write("campus-cloud: no token: use --token-file or set CAMPUS_API_TOKEN\n")
        return 2
    path = f"/v1/fleet/{args.gateway}" if args.gateway else "/v1/fleet"
    try:
        r = httpx.get(args.url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError as exc:
        sys.stderr.write(f"campus-cloud: cannot reach {args.url}: {exc}\n")
        return 1
    if r.status_code != 200:
        sys.stderr.write(f"campus-cloud: {path}: HTTP {r.status_code}: {r.text[:300]}\n")
        return 1
    data = r.json()
    sys.stdout.write(json.dumps(data, indent=2) + "\n" if args.json else render(data))
    return 0

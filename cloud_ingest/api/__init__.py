"""The cloud ingest HTTP API: batch uploads, heartbeats, fleet status, health and metrics.

Public surface::

    from cloud_ingest.api import create_app, load_settings, TokenStore, hash_token
    app = create_app(load_settings(), open_warehouse(url))   # serve with uvicorn

See docs/api.md for endpoints, error codes and limits.
"""

from __future__ import annotations

from cloud_ingest.api.app import create_app
from cloud_ingest.api.auth import Principal, TokenStore, hash_token
from cloud_ingest.api.errors import ApiError, Problem, SettingsError, TokenFileError
from cloud_ingest.api.heartbeats import FleetStore, GatewayRecord, HeartbeatIn, InMemoryFleetStore
from cloud_ingest.api.settings import ApiSettings, load_settings

__all__ = [
    "ApiError",
    "ApiSettings",
    "FleetStore",
    "GatewayRecord",
    "HeartbeatIn",
    "InMemoryFleetStore",
    "Principal",
    "Problem",
    "SettingsError",
    "TokenFileError",
    "TokenStore",
    "create_app",
    "hash_token",
    "load_settings",
]

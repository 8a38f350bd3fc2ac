"""Gateway configuration: the example parses; every error names the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import EXAMPLE_PATH, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "edge.toml"
    p.write_text(text)
    return p


def test_example_config_parses(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, EXAMPLE_PATH.read_text()), require_secrets=False)
    assert cfg.gateway_id == "gw-demo-01"
    assert cfg.mqtt.qos == 1
    assert cfg.buffer.disk_budget_bytes == 512 * 1024 * 1024
    assert cfg.http_port == 9108


@pytest.mark.parametrize(("text", "needle"), [
    ("[gateway]\n", "gateway.id: is required"),
    ('[gateway]\nid="g"\n[upload]\ntimeout_s="abc"\n', "upload.timeout_s: 'abc' is not a float"),
    ('[gateway]\nid="g"\n[mqtt]\nport=0\n', "mqtt.port: 0 must be > 0"),
    ('[gateway]\nid="g"\n[mqtt]\nportt=1\n', "mqtt.portt: unknown key"),
    ('[gateway]\nid="g"\n[bogus]\n', "bogus: unknown section"),
    ('[gateway]\nid="g"\n[http]\nlisten="nope"\n', "http.listen: 'nope' is not HOST:PORT"),
    ('[gateway]\nid="g"\n[mqtt]\ntopics=["a/#/b"]\n', "invalid topic filter"),
    ('[gateway]\nid="g"\n', "upload.token_file: cannot read"),
    ("[gateway\n", "not valid TOML"),
    ('[gateway]\nid="g"\ntimezone="Mars/Olympus"\n', "gateway.timezone: 'Mars/Olympus' is not a known IANA"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=r"edge\.toml") as exc:
        load_config(write(tmp_path, text))
    assert needle in str(exc.value)


def test_init_config_prints_example() -> None:
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "init-config"], capture_output=True,
                         text=True, check=True).stdout
    assert out == EXAMPLE_PATH.read_text()

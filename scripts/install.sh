#!/usr/bin/env bash
# Install campus-collector on a gateway (default) or a cloud host (--cloud).
#
#   scripts/install.sh [--root DIR] [--prefix /opt/campus-collector] [--cloud] [--no-deps] [--no-users]
#
# Puts in place: a virtualenv with the package at PREFIX/venv, docs at PREFIX/docs, the systemd unit in
# ROOT/etc/systemd/system, an example config in ROOT/etc/campus-edge/edge.toml (kept if present) and the
# device profiles in ROOT/etc/campus-edge/device_profiles, and a dedicated system user.
# --root installs into a staging directory (used by the tests); users are then not created.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
root="" prefix=/opt/campus-collector cloud=0 deps=1 users=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$(realpath -m "$2"); shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --cloud) cloud=1; shift ;;
    --no-deps) deps=0; shift ;;
    --no-users) users=0; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$root" ] && users=0
say() { echo "install: $*"; }

venv="$root$prefix/venv"
say "virtualenv $venv"
mkdir -p "$root$prefix"
python3 -m venv "$venv"
if [ "$deps" = 1 ]; then
  "$venv/bin/python" -m pip install -q "$src[cloud,postgres]"
else
  "$venv/bin/python" -m pip install -q --no-deps "$src"
fi
# A staged venv must work from its final location: rewrite script shebangs that point into the stage.
if [ -n "$root" ]; then
  grep -rl "^#!$venv/bin/python" "$venv/bin" 2>/dev/null | xargs -r sed -i "1s|^#!$venv/|#!$prefix/venv/|"
fi
mkdir -p "$root$prefix/docs"
cp -r "$src/docs/." "$root$prefix/docs/" 2>/dev/null || true

unitdir="$root/etc/systemd/system"
mkdir -p "$unitdir"
if [ "$cloud" = 1 ]; then
  name=campus-cloud
  install -m 0644 "$src/systemd/campus-cloud.service" "$unitdir/"
  mkdir -p "$root/etc/campus-cloud"
else
  name=campus-edge
  install -m 0644 "$src/systemd/campus-edge.service" "$unitdir/"
  conf="$root/etc/campus-edge"
  mkdir -p "$conf"
  if [ ! -f "$conf/edge.toml" ]; then
    sed -e 's|^state_dir = .*|state_dir = "/var/lib/campus-edge"|' \
        -e 's|^profiles_dir = .*|profiles_dir = "/etc/campus-edge/device_profiles"|' \
        "$src/gateway/config_example.toml" > "$conf/edge.toml"
    chmod 0640 "$conf/edge.toml"
    say "example config written to $conf/edge.toml: edit gateway.id, mqtt and upload"
  fi
  rm -rf "$conf/device_profiles"
  cp -r "$src/device_profiles" "$conf/device_profiles"
fi
say "unit $unitdir/$name.service"

if [ "$users" = 1 ]; then
  if ! id "$name" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir "/var/lib/$name" --shell /usr/sbin/nologin "$name"
    say "created system user $name"
  fi
  chgrp -R "$name" "/etc/$name" 2>/dev/null || true
  systemctl daemon-reload 2>/dev/null || true
  say "now: systemctl enable --now $name"
fi

#!/usr/bin/env bash
# Installs what usvc needs from Debian's packages, when missing: tmux, libgit2-dev, pkg-config.
set -euo pipefail
missing=()
command -v tmux >/dev/null || missing+=(tmux)
pkg-config --exists libgit2 2>/dev/null || missing+=(libgit2-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v python3 >/dev/null || missing+=(python3)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null
}

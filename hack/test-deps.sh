#!/usr/bin/env bash
# Installs the real servers the gate's tests and benchmarks put it between
# (nginx, Caddy, Redis; wrk for `make bench-gate`), Node with npm (the
# official OpenFeature OFREP client is tested against the gate) and Chromium
# (the dashboard's tests drive it), from the distribution's packages, when
# they are missing. Needs root (or sudo) for
# apt-get.
set -euo pipefail

declare -A pkg=([nginx]=nginx [caddy]=caddy [redis-server]=redis-server [wrk]=wrk [node]=nodejs [npm]=npm [chromium]=chromium)
missing=()
for bin in nginx caddy redis-server wrk node npm chromium; do
  command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] || missing+=("${pkg[$bin]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root" >&2; exit 1; }
  sudo=sudo
fi
echo "installing ${missing[*]} (apt-get)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start their services; the tests start their own.
for svc in nginx caddy redis-server; do
  $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
done

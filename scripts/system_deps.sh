#!/usr/bin/env bash
# System packages the tests use: antiword (legacy .doc). Installed when missing and when we may (root);
# tests that need them skip with a reason otherwise.
set -u
need=()
command -v antiword >/dev/null 2>&1 || need+=(antiword)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: missing ${need[*]} (not root or no apt-get); the tests that need them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "note: could not install ${need[*]}; the tests that need them will skip" >&2
exit 0

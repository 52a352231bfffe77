#!/usr/bin/env bash
# System packages the tests use: antiword (legacy .doc); chromium and fonts-wqy-microhei (Web UI browser
# tests, Chinese glyphs; the OCR tests draw their pages in it); redis-server (job workers sharing one queue);
# libgl1 and libglib2.0-0 (opencv-python, which rapidocr-onnxruntime requires, loads them: OCR needs them at run time
# too). Installed when missing and when we may (root); tests that need them skip with a reason otherwise.
set -u
need=()
command -v antiword >/dev/null 2>&1 || need+=(antiword)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
fc-list 2>/dev/null | grep -qi 'wenquanyi micro hei' || need+=(fonts-wqy-microhei)
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || need+=(libgl1)
ldconfig -p 2>/dev/null | grep -q 'libglib-2.0.so.0' || need+=(libglib2.0-0)
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

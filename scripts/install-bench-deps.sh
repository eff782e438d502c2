#!/usr/bin/env bash
# Debian packages the benchmarks use (they install them themselves when missing; this is
# for preparing a machine in advance). Idempotent. Run as root.
#   janus               benchmarks/janus_compare.py (C reference SFU, streaming plugin)
#   gstreamer1.0-tools  gst-launch-1.0: the RTSP → RTP relay that feeds Janus
#   wrk                 benchmarks/api_reads.py --wrk
#   the RTSP test camera: GStreamer's RTSP server, its Python bindings, x264
set -euo pipefail

PACKAGES=(janus gstreamer1.0-tools wrk gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0
          python3-gst-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
          gstreamer1.0-plugins-ugly)

if [[ ${EUID} -ne 0 ]]; then
    echo "install-bench-deps: must run as root" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg -s "${pkg}" 2>/dev/null) || { missing+=("${pkg}"); continue; }
    grep -qx 'Status: install ok installed' <<<"${status}" || missing+=("${pkg}")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" || {
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    }
fi

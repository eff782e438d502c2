#!/usr/bin/env bash
# Install the Debian packages the integration tests need (RTSP test camera, headless
# Chromium, podman to build and run the container image). Idempotent: only packages that dpkg does not report as installed are
# installed, and `apt-get update` runs once, only when something is missing.
# Run as root.
set -euo pipefail

PACKAGES=(
    # RTSP test camera (tests/camera/server.py runs on Debian's /usr/bin/python3).
    gstreamer1.0-rtsp
    gir1.2-gst-rtsp-server-1.0
    python3-gst-1.0
    gstreamer1.0-plugins-base   # videotestsrc, opusenc, audiotestsrc
    gstreamer1.0-x              # clockoverlay/textoverlay: Debian ships the Pango plugin here
    gstreamer1.0-plugins-good   # rtph264pay, rtph265pay, rtpjpegpay, jpegenc, rtpmp4gpay, alawenc, mulawenc, rtppcmapay/rtppcmupay
    gstreamer1.0-plugins-bad    # openh264enc, x265enc (H.265 camera), voaacenc (AAC camera)
    gstreamer1.0-plugins-ugly   # x264enc
    gstreamer1.0-tools          # gst-inspect-1.0 / gst-launch-1.0 for debugging
    # clockoverlay renders with Pango: without a font the time text is empty boxes.
    fonts-dejavu-core
    # OpenCV's sample data: the photo of a standing person in the detection scenes
    # (/usr/share/doc/opencv-doc/examples/data/basketball1.png; see docs/detection.md).
    opencv-doc
    # Browser tests (WebRTC playback).
    chromium
    chromium-driver
    # Container image (tests/deploy): podman builds and runs it with runc (crun fails on
    # setrlimit here); mmdebstrap makes its Debian base, as no image registry is reachable.
    podman
    runc
    mmdebstrap
)

if [[ ${EUID} -ne 0 ]]; then
    echo "install-test-deps: must run as root" >&2
    exit 1
fi

is_installed() {
    # dpkg -s also succeeds for removed-but-not-purged packages, so check the status line.
    # Capture first: with pipefail, `dpkg -s | grep -q` fails when grep exits early and
    # dpkg dies of SIGPIPE on a long status record.
    local status
    status=$(dpkg -s "$1" 2>/dev/null) || return 1
    grep -qx 'Status: install ok installed' <<<"${status}"
}

# The detection tests' person photo (tests.camera.PERSON_IMAGE). dpkg installs opencv-doc
# without it when a `path-exclude` rule drops /usr/share/doc (slim and container images):
# the package then reads as installed while the file is absent.
PERSON_PHOTO=/usr/share/doc/opencv-doc/examples/data/basketball1.png

check_person_photo() {
    if [[ -f ${PERSON_PHOTO} ]]; then
        return 0
    fi
    echo "install-test-deps: ${PERSON_PHOTO} is missing although opencv-doc is installed." >&2
    local rules
    rules=$(grep -Hs '^path-exclude' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* || true)
    if [[ -n ${rules} ]]; then
        echo "dpkg excludes paths here, which drops it:" >&2
        echo "${rules}" >&2
    fi
    cat >&2 <<FIX
To fix (as root): let dpkg keep OpenCV's sample data, then reinstall the package:
    echo 'path-include=/usr/share/doc/opencv-doc/examples/data/*' \\
        > /etc/dpkg/dpkg.cfg.d/zz-opencv-doc-data
    apt-get install --reinstall -y opencv-doc
(dpkg applies the last matching path-exclude/path-include rule, and reads dpkg.cfg.d in
name order: keep the include in a file named after the one that excludes.)
FIX
    return 1
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! is_installed "${pkg}"; then
        missing+=("${pkg}")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-test-deps: all ${#PACKAGES[@]} packages already installed"
    check_person_photo
    exit 0
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Fail loudly if apt-get claimed success but a package is still not there.
still_missing=()
for pkg in "${missing[@]}"; do
    if ! is_installed "${pkg}"; then
        still_missing+=("${pkg}")
    fi
done
if [[ ${#still_missing[@]} -ne 0 ]]; then
    echo "install-test-deps: still missing after install: ${still_missing[*]}" >&2
    exit 1
fi
check_person_photo
echo "install-test-deps: installed ${#missing[@]} package(s)"

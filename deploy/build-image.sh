#!/usr/bin/env bash
# Build the VAS container image with podman, on a Debian bookworm base made from Debian's
# packages (no image registry needed):
#   1. mmdebstrap makes a minimal bookworm root filesystem with python3 (cached as a tarball
#      in VAS_BUILD_CACHE, default /var/cache/vas-build; delete it to start over);
#   2. `podman import` turns it into the image localbase:bookworm (once per machine);
#   3. `podman build` builds deploy/Dockerfile from the repo (apt and pip reach their
#      registries through the host's network).
# Usage: deploy/build-image.sh [IMAGE]     (default IMAGE: localhost/vas:latest)
# Run as root. Needs podman, runc, mmdebstrap (scripts/install-test-deps.sh installs them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${1:-${VAS_IMAGE:-localhost/vas:latest}}
CACHE=${VAS_BUILD_CACHE:-/var/cache/vas-build}
BASE=localbase:bookworm
BASE_TAR=${CACHE}/bookworm-minbase-python3.tar
# pip in the build trusts what this host trusts (a TLS-inspecting proxy's CA included).
CA_BUNDLE=${VAS_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

for tool in podman runc mmdebstrap; do
    command -v "${tool}" >/dev/null || { echo "build-image: ${tool} is missing (scripts/install-test-deps.sh)" >&2; exit 1; }
done
mkdir -p "${CACHE}"

# The default runtime (crun) fails on setrlimit on these machines, and so do the engine's
# default ulimits: runc, and no default ulimits.
export CONTAINERS_CONF=${CONTAINERS_CONF:-${CACHE}/containers.conf}
if [[ ! -s ${CONTAINERS_CONF} ]]; then
    printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' > "${CONTAINERS_CONF}"
fi

[[ -r ${CA_BUNDLE} ]] || { echo "build-image: no CA bundle at ${CA_BUNDLE} (VAS_BUILD_CA_BUNDLE)" >&2; exit 1; }

# One build at a time makes the base (builds of several checkouts may run at once).
exec 9>"${CACHE}/.lock"
flock 9
if ! podman image exists "${BASE}"; then
    if [[ ! -s ${BASE_TAR} ]]; then
        echo "build-image: making the bookworm base with mmdebstrap (about a minute)"
        # Written under a temporary name (explicitly a tarball) and renamed when complete,
        # so an interrupted run never leaves a truncated base behind.
        partial="${BASE_TAR%.tar}.partial-$$.tar"
        trap 'rm -f "${partial}"' EXIT
        # In a mount namespace of its own, with a /dev/shm of its own: whatever mmdebstrap
        # mounts while it builds (/dev, /proc, /dev/shm) vanishes with the namespace, even if
        # it is killed, and nothing can reach the host's /dev/shm (where PostgreSQL keeps its
        # shared memory) through a mount left behind.
        unshare --mount --propagation private sh -c '
            mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "$@"' mmdebstrap \
            mmdebstrap --quiet --format=tar --variant=minbase --include=python3,ca-certificates \
            --aptopt='Acquire::Retries "3"' \
            bookworm "${partial}"
        mv "${partial}" "${BASE_TAR}"
    fi
    echo "build-image: importing ${BASE_TAR} as ${BASE}"
    podman import --quiet "${BASE_TAR}" "${BASE}" >/dev/null
fi
flock --unlock 9

echo "build-image: building ${IMAGE}"
# --format docker keeps the HEALTHCHECK (the OCI image format has no such field).
podman --runtime runc build --network host --format docker --layers \
    --secret "id=ca,src=${CA_BUNDLE}" \
    --ignorefile "${ROOT}/deploy/Dockerfile.dockerignore" \
    --file "${ROOT}/deploy/Dockerfile" --tag "${IMAGE}" "${ROOT}"
echo "build-image: built ${IMAGE}"

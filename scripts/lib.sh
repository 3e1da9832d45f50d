# Shared helpers for the project's scripts. Source it; do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where services keep their state and logs. Persistent on purpose: a second run reuses it.
STATE_DIR="${IMAGEBUILD_NB_STATE_DIR:-/var/lib/imagebuild-nb-dev}"
CACHE_DIR="${IMAGEBUILD_NB_CACHE_DIR:-/var/cache/imagebuild-nb}"
VENV="${IMAGEBUILD_NB_VENV:-$ROOT/.venv}"

PLAIN_REGISTRY="${IMAGEBUILD_NB_PLAIN_REGISTRY:-localhost:5001}"
AUTH_REGISTRY="${IMAGEBUILD_NB_AUTH_REGISTRY:-localhost:5002}"
AUTH_REGISTRY_USER="${IMAGEBUILD_NB_AUTH_REGISTRY_USER:-imagebuild}"
AUTH_REGISTRY_PASSWORD="${IMAGEBUILD_NB_AUTH_REGISTRY_PASSWORD:-imagebuild-secret}"

# The images the scripts make without pulling anything.
BUSYBOX_IMAGE="imagebuild-nb/busybox:latest"
DEBIAN_PYTHON_IMAGE="imagebuild-nb/debian-python:bookworm"
# Where the Debian/python base lands in the local registry: the name the default base
# (python:3.11-slim on Docker Hub) takes under a registry mirror.
MIRRORED_PYTHON_BASE="$PLAIN_REGISTRY/library/python:3.11-slim"
MIRRORED_BUSYBOX="$PLAIN_REGISTRY/library/busybox:latest"

# The CLI that speaks BuildKit here (Debian's); a newer client earlier on PATH may lack buildx.
DOCKER="${IMAGEBUILD_NB_DOCKER_CLI:-$(command -v /usr/bin/docker || command -v docker || echo docker)}"

log() { printf '[imagebuild-nb] %s\n' "$*" >&2; }
die() { printf '[imagebuild-nb] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

engine_answers() { "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

registry_answers() { # host:port -> true when /v2/ answers (200 or 401)
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1/v2/" || true)
  [[ "$code" == 200 || "$code" == 401 ]]
}

wait_until() { # seconds description command...
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@"; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.2
  done
}

need_root() {
  [[ $(id -u) == 0 ]] || die "$1 needs root (Debian packages are installed with apt-get). Re-run with sudo, or install it yourself: $2"
}

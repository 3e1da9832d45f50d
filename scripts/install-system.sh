#!/usr/bin/env bash
# Install the Debian packages the project needs: Docker engine (only when no engine answers),
# the registry, htpasswd, busybox and debootstrap for base images, skopeo, Chromium for the
# browser tests. A second run is a fast no-op.
source "$(dirname "$0")/lib.sh"

want=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
if engine_answers; then
  log "a Docker engine already answers; not installing one"
else
  have_cmd dockerd || want+=(docker.io)
fi
[[ -x /usr/bin/docker ]] || have_cmd docker || want+=(docker.io)
have_cmd docker-registry || want+=(docker-registry)
have_cmd htpasswd || want+=(apache2-utils)
[[ -x /bin/busybox || -x /usr/bin/busybox ]] || want+=(busybox-static)
have_cmd debootstrap || want+=(debootstrap)
have_cmd skopeo || want+=(skopeo)
have_cmd chromium || want+=(chromium)
have_cmd curl || want+=(curl)

if (( ${#want[@]} == 0 )); then
  log "system packages: all present"
  exit 0
fi
need_root "installing ${want[*]}" "apt-get install ${want[*]}"
start=$(now)
log "installing Debian packages: ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || die "apt-get update failed (is the Debian mirror reachable?)"
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null \
  || die "apt-get install ${want[*]} failed"
log "system packages installed in $(elapsed "$start")"

#!/usr/bin/env bash
# Make the base images without pulling anything (no container registry is reachable here):
#   - a tiny busybox image (docker import of a busybox-static rootfs, < 1 s)
#   - Debian bookworm with python3 + venv + CA certificates (debootstrap, ~40 s; cached as a tar)
# Each is loaded into the engine and pushed to the plain registry under the Docker Hub name a
# registry mirror would serve (library/busybox, library/python:3.11-slim). A second run is a no-op.
source "$(dirname "$0")/lib.sh"

image_present() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

make_busybox() {
  if image_present "$BUSYBOX_IMAGE"; then log "busybox image: present ($BUSYBOX_IMAGE)"; return; fi
  local busybox; busybox=$(command -v busybox || true)
  [[ -n $busybox ]] || die "busybox is not installed: run scripts/install-system.sh"
  local rootfs; rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{bin,tmp,etc}
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
  done
  echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/etc/passwd"
  tar -C "$rootfs" -c . | "$DOCKER" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$BUSYBOX_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "busybox image: imported as $BUSYBOX_IMAGE"
}

make_debian_python() {
  if image_present "$DEBIAN_PYTHON_IMAGE"; then log "Debian/python image: present ($DEBIAN_PYTHON_IMAGE)"; return; fi
  # The recipe's version is in the cache key: change the package list, bump it.
  local tarball="$CACHE_DIR/debian-bookworm-python-v1.tar"
  if [[ ! -s $tarball ]]; then
    need_root "debootstrap" "build a Debian image yourself and tag it $DEBIAN_PYTHON_IMAGE"
    command -v debootstrap >/dev/null || die "debootstrap is not installed: run scripts/install-system.sh"
    mkdir -p "$CACHE_DIR"
    local rootfs="$CACHE_DIR/rootfs.tmp" start; start=$(now)
    rm -rf "$rootfs"
    log "Debian/python image: running debootstrap (about 40 s, cached afterwards in $tarball)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$rootfs" >"$CACHE_DIR/debootstrap.log" 2>&1 \
      || die "debootstrap failed; its log: $CACHE_DIR/debootstrap.log"
    # Keep the image small and honest: no apt lists, no caches.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    log "Debian/python image: debootstrap done in $(elapsed "$start")"
  fi
  "$DOCKER" import -c 'CMD ["python3"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' "$tarball" "$DEBIAN_PYTHON_IMAGE" >/dev/null
  log "Debian/python image: imported as $DEBIAN_PYTHON_IMAGE"
}

push_as() { # local-image remote-name
  "$DOCKER" tag "$1" "$2"
  "$DOCKER" push -q "$2" >/dev/null || die "pushing $2 failed (is the registry up? scripts/services.sh)"
  log "pushed $1 as $2"
}

make_busybox
make_debian_python
push_as "$BUSYBOX_IMAGE" "$MIRRORED_BUSYBOX"
push_as "$DEBIAN_PYTHON_IMAGE" "$MIRRORED_PYTHON_BASE"

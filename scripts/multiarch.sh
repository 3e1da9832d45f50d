#!/usr/bin/env bash
# The second engine and the second platform, for the tests that need them (scripts/test runs
# this; scripts/quickstart does not, so the README's first command stays as fast as before):
#   - podman (rootful; the tests give it a private --root/--runroot)
#   - qemu-user-static with binfmt_misc, so linux/arm64 binaries run here
#   - an arm64 busybox base (Debian's busybox-static:arm64, no pull), and the busybox base in the
#     plain registry as a two-platform index (linux/amd64 + linux/arm64)
#   IMAGEBUILD_NB_ARM64_PYTHON=1 also builds the Debian/python base for arm64 (debootstrap under
#   qemu: minutes, cached in $CACHE_DIR) and pushes python:3.11-slim as a two-platform index.
# Idempotent: a second run is a fast no-op apart from re-asserting the indexes (a few seconds).
source "$(dirname "$0")/lib.sh"
start=$(now)
# Remembered per machine: once asked for, the arm64 Debian/python base stays part of the setup.
ARM64_PYTHON="${IMAGEBUILD_NB_ARM64_PYTHON:-$(cat "$CACHE_DIR/multiarch.enabled" 2>/dev/null || echo 0)}"

BUSYBOX_ARM64_IMAGE="imagebuild-nb/busybox:latest-arm64"
DEBIAN_PYTHON_ARM64_IMAGE="imagebuild-nb/debian-python:bookworm-arm64"
# The 28.x client has `docker manifest` (Debian's 20.10 client keeps it experimental).
MANIFEST_CLI="${IMAGEBUILD_NB_MANIFEST_CLI:-/usr/local/bin/docker}"

have_cmd() { command -v "$1" >/dev/null 2>&1; }
image_present() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

install_packages() {
  local want=()
  have_cmd podman || want+=(podman)
  have_cmd qemu-aarch64-static || want+=(qemu-user-static)
  have_cmd update-binfmts || want+=(binfmt-support)
  if (( ${#want[@]} == 0 )); then log "podman, qemu-user-static: present"; return; fi
  need_root "installing ${want[*]}" "apt-get install ${want[*]}"
  local t; t=$(now)
  log "installing Debian packages: ${want[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed (is the Debian mirror reachable?)"
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null \
    || die "apt-get install ${want[*]} failed"
  log "podman/qemu installed in $(elapsed "$t")"
}

enable_binfmt() {
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    need_root "mounting binfmt_misc" "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc"
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
  fi
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
      update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
    fi
  fi
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] \
    || die "qemu-aarch64 is not registered with binfmt_misc (update-binfmts --enable qemu-aarch64)"
  log "binfmt: qemu-aarch64 registered ($(grep flags /proc/sys/fs/binfmt_misc/qemu-aarch64))"
}

arm64_apt() { # the arm64 package lists, once per machine
  if dpkg --print-foreign-architectures | grep -qx arm64 && [[ -f $CACHE_DIR/arm64-lists.stamp ]]; then
    return
  fi
  need_root "adding the arm64 architecture" "dpkg --add-architecture arm64 && apt-get update"
  dpkg --add-architecture arm64
  apt-get update -qq || die "apt-get update (arm64 lists) failed"
  mkdir -p "$CACHE_DIR" && touch "$CACHE_DIR/arm64-lists.stamp"
}

import_as_arm64() { # context-dir-with-rootfs.tar env-lines cmd-line image
  # `docker import --platform` is ignored by a 20.10 engine without experimental mode (the image
  # comes out amd64); a BuildKit build FROM scratch records the platform and runs nothing.
  printf 'FROM scratch\nADD rootfs.tar /\n%s\n%s\n' "$2" "$3" >"$1/Dockerfile"
  DOCKER_BUILDKIT=1 "$DOCKER" build -q --platform linux/arm64 -t "$4" "$1" >/dev/null \
    || die "building the arm64 image $4 from its root filesystem failed"
}

make_busybox_arm64() {
  if image_present "$BUSYBOX_ARM64_IMAGE"; then log "arm64 busybox image: present"; return; fi
  local deb="$CACHE_DIR/busybox-static-arm64.deb"
  if [[ ! -s $deb ]]; then
    arm64_apt
    local dl; dl=$(mktemp -d)
    (cd "$dl" && apt-get download -qq busybox-static:arm64) || die "apt-get download busybox-static:arm64 failed"
    mv "$dl"/busybox-static_*_arm64.deb "$deb" && rm -rf "$dl"
  fi
  local rootfs; rootfs=$(mktemp -d)
  dpkg-deb -x "$deb" "$rootfs/pkg"
  mkdir -p "$rootfs/img"/{bin,tmp,etc}
  cp "$rootfs/pkg/bin/busybox" "$rootfs/img/bin/busybox"
  # The applet list comes from the amd64 busybox: the same Debian version, the same applets.
  for applet in $(busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$rootfs/img/bin/$applet"
  done
  echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/img/etc/passwd"
  mkdir "$rootfs/ctx" && tar -C "$rootfs/img" -cf "$rootfs/ctx/rootfs.tar" .
  import_as_arm64 "$rootfs/ctx" 'ENV PATH=/bin' 'CMD ["/bin/sh"]' "$BUSYBOX_ARM64_IMAGE"
  rm -rf "$rootfs"
  "$DOCKER" run --rm --platform linux/arm64 --network none "$BUSYBOX_ARM64_IMAGE" uname -m | grep -qx aarch64 \
    || die "the arm64 busybox image does not run (is qemu-aarch64 registered?)"
  log "arm64 busybox image: imported as $BUSYBOX_ARM64_IMAGE (runs under qemu)"
}

make_debian_python_arm64() {
  if image_present "$DEBIAN_PYTHON_ARM64_IMAGE"; then log "arm64 Debian/python image: present"; return; fi
  local tarball="$CACHE_DIR/debian-bookworm-python-arm64-v1.tar"
  if [[ ! -s $tarball ]]; then
    need_root "debootstrap" "build an arm64 Debian image yourself and tag it $DEBIAN_PYTHON_ARM64_IMAGE"
    local rootfs="$CACHE_DIR/rootfs-arm64.tmp" t; t=$(now)
    rm -rf "$rootfs"
    log "arm64 Debian/python image: running debootstrap under qemu (minutes; cached in $tarball)"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$rootfs" >"$CACHE_DIR/debootstrap-arm64.log" 2>&1 \
      || die "debootstrap --arch=arm64 failed; its log: $CACHE_DIR/debootstrap-arm64.log"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    log "arm64 Debian/python image: debootstrap done in $(elapsed "$t")"
  fi
  local ctx; ctx=$(mktemp -d)
  ln "$tarball" "$ctx/rootfs.tar" 2>/dev/null || cp "$tarball" "$ctx/rootfs.tar"
  import_as_arm64 "$ctx" $'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nENV LANG=C.UTF-8' \
    'CMD ["python3"]' "$DEBIAN_PYTHON_ARM64_IMAGE"
  rm -rf "$ctx"
  log "arm64 Debian/python image: imported as $DEBIAN_PYTHON_ARM64_IMAGE"
}

push_index() { # amd64-image arm64-image remote-name: one tag, a two-platform index
  local target=$3
  "$DOCKER" tag "$1" "$target-linux-amd64" && "$DOCKER" push -q "$target-linux-amd64" >/dev/null \
    || die "pushing $target-linux-amd64 failed (is the registry up? scripts/services.sh)"
  "$DOCKER" tag "$2" "$target-linux-arm64" && "$DOCKER" push -q "$target-linux-arm64" >/dev/null \
    || die "pushing $target-linux-arm64 failed"
  [[ -x $MANIFEST_CLI ]] || die "no docker client with 'docker manifest' at $MANIFEST_CLI (set IMAGEBUILD_NB_MANIFEST_CLI)"
  "$MANIFEST_CLI" manifest rm "$target" >/dev/null 2>&1 || true
  "$MANIFEST_CLI" manifest create --insecure "$target" "$target-linux-amd64" "$target-linux-arm64" >/dev/null \
    || die "docker manifest create $target failed"
  "$MANIFEST_CLI" manifest push --insecure --purge "$target" >/dev/null || die "docker manifest push $target failed"
  log "pushed $target as an index of linux/amd64 + linux/arm64"
}

install_packages
enable_binfmt
make_busybox_arm64
push_index "$BUSYBOX_IMAGE" "$BUSYBOX_ARM64_IMAGE" "$MIRRORED_BUSYBOX"
if [[ $ARM64_PYTHON == 1 ]]; then
  make_debian_python_arm64
  push_index "$DEBIAN_PYTHON_IMAGE" "$DEBIAN_PYTHON_ARM64_IMAGE" "$MIRRORED_PYTHON_BASE"
fi
# base-images.sh (run by every setup, quickstart included) pushes the amd64 bases over these tags;
# this stamp tells setup.sh to run us again after it, so the indexes come back.
mkdir -p "$CACHE_DIR" && echo "$ARM64_PYTHON" >"$CACHE_DIR/multiarch.enabled"
log "multi-platform setup complete in $(elapsed "$start")"

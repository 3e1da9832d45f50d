#!/usr/bin/env bash
# Everything the project needs on this machine, idempotently: Debian packages, the Docker engine,
# the plain and Basic-auth registries, the base images, and .venv. Prints what it did.
source "$(dirname "$0")/lib.sh"
start=$(now)
bash "$ROOT/scripts/install-system.sh"
bash "$ROOT/scripts/services.sh" start
bash "$ROOT/scripts/base-images.sh"
# podman, qemu and the arm64 bases: asked for by scripts/test (IMAGEBUILD_NB_MULTIARCH=1), then
# kept up on this machine (base-images.sh pushes single-platform bases over the indexes).
if [[ ${IMAGEBUILD_NB_MULTIARCH:-0} == 1 || -f $CACHE_DIR/multiarch.enabled ]]; then
  bash "$ROOT/scripts/multiarch.sh"
fi
# PostgreSQL server binaries for the build-farm tests: asked for by scripts/test, then kept.
if [[ ${IMAGEBUILD_NB_POSTGRES:-0} == 1 || -f $CACHE_DIR/postgres.enabled ]]; then
  bash "$ROOT/scripts/postgres.sh"
fi
# configurable-http-proxy for the JupyterHub tests: asked for by scripts/test, then kept.
if [[ ${IMAGEBUILD_NB_HUB:-0} == 1 || -f $CACHE_DIR/hub.enabled ]]; then
  bash "$ROOT/scripts/hub.sh"
fi
bash "$ROOT/scripts/venv.sh"
log "setup complete in $(elapsed "$start")"

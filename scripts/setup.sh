#!/usr/bin/env bash
# Everything the project needs on this machine, idempotently: Debian packages, the Docker engine,
# the plain and Basic-auth registries, the base images, and .venv. Prints what it did.
source "$(dirname "$0")/lib.sh"
start=$(now)
bash "$ROOT/scripts/install-system.sh"
bash "$ROOT/scripts/services.sh" start
bash "$ROOT/scripts/base-images.sh"
bash "$ROOT/scripts/venv.sh"
log "setup complete in $(elapsed "$start")"

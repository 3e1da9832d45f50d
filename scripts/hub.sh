#!/usr/bin/env bash
# configurable-http-proxy (npm) for the JupyterHub tests (scripts/test runs this; scripts/quickstart
# does not). Only into the cache directory, nothing system-wide: the tests start their own Hub
# (tests/support/jupyterhub.py) with this proxy; jupyterhub itself is the project's `hub` extra.
# Idempotent: a second run is a no-op; remembered per machine in $CACHE_DIR/hub.enabled.
source "$(dirname "$0")/lib.sh"
start=$(now)
prefix="$CACHE_DIR/hub-proxy"
proxy="$prefix/node_modules/.bin/configurable-http-proxy"

if [[ -x $proxy ]]; then
  log "configurable-http-proxy: present ($proxy)"
else
  command -v npm >/dev/null || die "npm not found (the JupyterHub tests need node and npm: apt-get install nodejs npm)"
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" configurable-http-proxy@5 >/dev/null \
    || die "npm install configurable-http-proxy failed (is the npm registry reachable?)"
  [[ -x $proxy ]] || die "npm installed configurable-http-proxy but $proxy is missing"
  log "configurable-http-proxy installed in $(elapsed "$start") ($proxy)"
fi
mkdir -p "$CACHE_DIR" && echo 1 >"$CACHE_DIR/hub.enabled"

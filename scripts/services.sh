#!/usr/bin/env bash
# Start (idempotently) the Docker engine and the two test registries; `stop` stops what we started.
#   plain registry:      http://$PLAIN_REGISTRY   (no auth)
#   Basic-auth registry: http://$AUTH_REGISTRY    (htpasswd, user $AUTH_REGISTRY_USER)
source "$(dirname "$0")/lib.sh"

start_engine() {
  if engine_answers; then
    log "Docker engine: answering ($("$DOCKER" version --format '{{.Server.Version}}'))"
    return
  fi
  command -v dockerd >/dev/null || die "no Docker engine answers and dockerd is not installed: run scripts/install-system.sh (as root) or start Docker"
  need_root "starting dockerd" "start your Docker engine"
  mkdir -p "$STATE_DIR"
  local start; start=$(now)
  # --iptables=false: this machine's kernel/sandbox has no usable iptables; builds that need
  # the network use host networking instead (see ENVIRONMENT.md).
  # BUILDKIT_STEP_LOG_MAX_*: BuildKit clips a step's output past 2 MiB / 200 KiB/s by default;
  # lift it so chatty RUN steps reach the log whole (builders still mark any clipping).
  BUILDKIT_STEP_LOG_MAX_SIZE=1073741824 BUILDKIT_STEP_LOG_MAX_SPEED=104857600 \
    setsid nohup dockerd --iptables=false --ip6tables=false >"$STATE_DIR/dockerd.log" 2>&1 &
  wait_until 60 "dockerd" engine_answers \
    || die "dockerd did not answer within 60 s; its log: $STATE_DIR/dockerd.log: $(tail -5 "$STATE_DIR/dockerd.log")"
  log "Docker engine: started in $(elapsed "$start") (log: $STATE_DIR/dockerd.log)"
}

start_registry() { # label host:port [htpasswd-file]
  local label=$1 addr=$2 htpasswd=${3:-}
  if registry_answers "$addr"; then
    log "$label registry: answering on $addr"
    return
  fi
  command -v docker-registry >/dev/null || die "docker-registry is not installed: run scripts/install-system.sh"
  local dir="$STATE_DIR/registry-$label"
  mkdir -p "$dir/storage"
  {
    echo "version: 0.1"
    echo "log: {level: warn}"
    echo "storage: {filesystem: {rootdirectory: $dir/storage}, delete: {enabled: true}}"
    echo "http: {addr: ${addr/localhost/127.0.0.1}, secret: imagebuild-nb-$label}"
    [[ -n "$htpasswd" ]] && echo "auth: {htpasswd: {realm: imagebuild-nb, path: $htpasswd}}"
  } >"$dir/config.yml"
  setsid nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/pid"
  wait_until 20 "$label registry" registry_answers "$addr" \
    || die "$label registry did not answer on $addr; its log: $(tail -5 "$dir/registry.log")"
  log "$label registry: started on $addr (storage: $dir/storage)"
}

stop_all() {
  for label in plain basic; do
    local pidfile="$STATE_DIR/registry-$label/pid"
    [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null && log "stopped $label registry"
    rm -f "$pidfile"
  done
  pkill -x dockerd 2>/dev/null && log "stopped dockerd" || true
}

case "${1:-start}" in
  start)
    start_engine
    mkdir -p "$STATE_DIR/registry-basic"
    htpasswd_file="$STATE_DIR/registry-basic/htpasswd"
    [[ -f $htpasswd_file ]] || htpasswd -Bbn "$AUTH_REGISTRY_USER" "$AUTH_REGISTRY_PASSWORD" >"$htpasswd_file"
    start_registry plain "$PLAIN_REGISTRY"
    start_registry basic "$AUTH_REGISTRY" "$htpasswd_file"
    ;;
  stop) stop_all ;;
  *) die "usage: $0 [start|stop]" ;;
esac

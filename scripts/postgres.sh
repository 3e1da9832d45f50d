#!/usr/bin/env bash
# PostgreSQL server binaries for the build-farm tests (scripts/test runs this; scripts/quickstart
# does not, so the README's first command stays as fast as before). Only the binaries: the tests
# make and start their own private cluster (initdb + pg_ctl as the postgres user on a free
# loopback port, tests/support/postgres.py), so nothing listens here between test runs.
# Idempotent: a second run is a no-op; remembered per machine in $CACHE_DIR/postgres.enabled.
source "$(dirname "$0")/lib.sh"
start=$(now)

pg_bindir() { # the newest installed server's bin directory, or nothing
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return; }
  done
}

if [[ -n $(pg_bindir) ]] && id postgres >/dev/null 2>&1; then
  log "postgresql: present ($(pg_bindir))"
else
  need_root "installing postgresql" "apt-get install postgresql"
  # Debian's postgresql-common makes and starts a 'main' cluster on port 5432 at install; the
  # tests use private clusters only, so ask it not to.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/imagebuild-nb.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed (is the Debian mirror reachable?)"
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
    || die "apt-get install postgresql failed"
  [[ -n $(pg_bindir) ]] || die "postgresql installed but no initdb/pg_ctl under /usr/lib/postgresql"
  log "postgresql installed in $(elapsed "$start") ($(pg_bindir))"
fi
mkdir -p "$CACHE_DIR" && echo 1 >"$CACHE_DIR/postgres.enabled"

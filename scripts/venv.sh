#!/usr/bin/env bash
# Create .venv with the project (editable) and its test dependencies. A second run is a no-op
# unless pyproject.toml changed.
source "$(dirname "$0")/lib.sh"

PYTHON="${PYTHON:-python3}"
stamp="$VENV/.imagebuild-nb-installed"
digest=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
if [[ -f $stamp && $(cat "$stamp") == "$digest" ]]; then
  log "virtualenv: up to date ($VENV)"
  exit 0
fi
start=$(now)
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv with $PYTHON (Debian: apt-get install python3-venv)"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e "$ROOT[test]" || die "pip install -e .[test] failed"
echo "$digest" >"$stamp"
log "virtualenv: installed the project and test dependencies in $(elapsed "$start") ($VENV)"

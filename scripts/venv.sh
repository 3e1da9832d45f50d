#!/usr/bin/env bash
# Create .venv with the project (editable) and its test dependencies. A second run is a no-op
# unless pyproject.toml changed.
#   IMAGEBUILD_NB_EXTRAS=flyte bash scripts/venv.sh   also installs those optional extras (comma
#   separated); each is remembered per machine, so asking again costs nothing.
source "$(dirname "$0")/lib.sh"

PYTHON="${PYTHON:-python3}"
stamp="$VENV/.imagebuild-nb-installed"
digest=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
extras=()
IFS=", " read -r -a extras <<<"${IMAGEBUILD_NB_EXTRAS:-}"

current() { [[ -f $1 && $(cat "$1") == "$digest" ]]; }
missing=()
current "$stamp" || missing+=(test)
for extra in "${extras[@]}"; do current "$VENV/.imagebuild-nb-extra-$extra" || missing+=("$extra"); done
if (( ${#missing[@]} == 0 )); then
  log "virtualenv: up to date ($VENV${extras[*]:+, extras: ${extras[*]}})"
  exit 0
fi
start=$(now)
wanted=$(IFS=,; echo "test${extras[*]:+,${extras[*]}}")
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv with $PYTHON (Debian: apt-get install python3-venv)"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e "$ROOT[$wanted]" || die "pip install -e .[$wanted] failed"
echo "$digest" >"$stamp"
for extra in "${extras[@]}"; do echo "$digest" >"$VENV/.imagebuild-nb-extra-$extra"; done
log "virtualenv: installed the project with [$wanted] in $(elapsed "$start") ($VENV)"

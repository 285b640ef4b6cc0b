#!/usr/bin/env bash
# `make register FILE=path/to/model.joblib NAME=fraud [PROMOTE=1]`: register a model file of this
# machine into the running Compose stack's registry (its models volume), through the admin service.
#
# The file is checked here, then given to the admin container on its standard input
# (`modelyard models register -`): nothing is mounted, so a missing file cannot turn into an empty
# directory, a path with spaces or colons needs no care, and the container's non-root user needs
# no right to read it.
set -euo pipefail
say() { echo "register: $*" >&2; }

file=${1:-} name=${2:-} promote=${3:-}
if [ -z "$file" ] || [ -z "$name" ]; then
    say "usage: make register FILE=path/to/model.joblib NAME=fraud [PROMOTE=1]"
    exit 2
fi
[ -e "$file" ] || { say "$file: no such file"; exit 1; }
[ -f "$file" ] || { say "$file is not a file (a directory?): give the model file itself"; exit 1; }
[ -r "$file" ] || { say "$file cannot be read (its permissions)"; exit 1; }
case "$file" in
*.joblib) format=joblib ;;
*.pkl | *.pickle) format=pickle ;;
*) say "$file: expected a .joblib, .pkl or .pickle file"; exit 1 ;;
esac
args=(modelyard models register - --file-format "$format" --name "$name")
[ -n "$promote" ] && [ "$promote" != 0 ] && args+=(--promote)
exec <"$file"
cd "$(dirname "$0")/.." # compose.yaml's folder; the file is open already
exec docker compose run --rm -T admin "${args[@]}"

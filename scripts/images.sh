#!/usr/bin/env bash
# Build the api, worker and scheduler images (one Dockerfile, one shared dependency layer).
#
#   scripts/images.sh            with a registry: official base images, wheels from PyPI;
#                                without one (nothing can be pulled): offline, as below
#   scripts/images.sh --offline  stand-in base images made from Debian packages (debootstrap) and
#                                Python packages from a wheelhouse downloaded on this host
#   ... --demo                   also the demo profile's S3 test server (moto) and PostgreSQL
#                                database, the same way (PostgreSQL on a base image made from
#                                Debian's postgresql-15 package when offline)
#   ... --monitoring             also the monitoring profile's Prometheus and Alertmanager: Debian's
#                                packages, on the official Debian image, or offline on stand-ins
#                                made from those packages
#
# Either way the result runs with the same compose.yaml. What was chosen is written to
# .images.env, which `make up` and the bundle hand to Compose.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "images.sh: $*" >&2; }

OFFLINE=${MODELYARD_OFFLINE:-auto}
DEMO=no
MONITORING=no
for arg in "$@"; do
    case $arg in
    --offline) OFFLINE=yes ;;
    --demo) DEMO=yes ;;
    --monitoring) MONITORING=yes ;;
    *) say "unknown option $arg (--offline, --demo, --monitoring)" && exit 2 ;;
    esac
done
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.11-slim-bookworm}
REDIS_IMAGE=${REDIS_IMAGE:-redis:7.4-bookworm}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-postgres:15-bookworm} # the demo profile's, a build argument only
# the monitoring profile's, build arguments only: Debian's packages installed there when missing
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-debian:bookworm-slim}
ALERTMANAGER_IMAGE=${ALERTMANAGER_IMAGE:-debian:bookworm-slim}
OFFLINE_PYTHON=modelyard/python-offline:bookworm
OFFLINE_REDIS=modelyard/redis-offline:bookworm
OFFLINE_POSTGRES=modelyard/postgres-offline:bookworm
OFFLINE_PROMETHEUS=modelyard/prometheus-offline:bookworm
OFFLINE_ALERTMANAGER=modelyard/alertmanager-offline:bookworm

scripts/docker.sh

if [ "$OFFLINE" = auto ]; then
    if docker image inspect "$PYTHON_IMAGE" >/dev/null 2>&1 ||
        timeout 60 docker pull -q "$PYTHON_IMAGE" >/dev/null 2>&1; then
        OFFLINE=no
    else
        say "cannot pull $PYTHON_IMAGE: building offline"
        OFFLINE=yes
    fi
fi

stand_in() { # IMAGE PACKAGES...: a minimal Debian image with these packages, from debootstrap
    local image=$1
    shift
    docker image inspect "$image" >/dev/null 2>&1 && return
    command -v debootstrap >/dev/null || {
        say "installing debootstrap from apt"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    local rootfs
    rootfs=$(mktemp -d)
    say "making $image from Debian packages: $*"
    debootstrap --variant=minbase --include="$(
        IFS=,
        echo "$*"
    )" bookworm "$rootfs" >/dev/null
    # as in the official redis image: a data folder for uid 999
    if [ -x "$rootfs/usr/bin/redis-server" ]; then mkdir -p "$rootfs/data" && chown 999:999 "$rootfs/data"; fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - "$image" >/dev/null
    rm -rf "$rootfs"
}

rm -f services/wheelhouse/*.whl services/wheelhouse/requirements.txt services/s3-demo/wheelhouse/*.whl
wheels() { # FOLDER REQUIREMENT...: wheels for the images' Python (Debian's 3.11.2), not this host's
    local folder=$1
    shift
    .venv/bin/pip download -q -d "$folder" -c constraints.txt --only-binary=:all: \
        --python-version 3.11 --implementation cp --platform "manylinux_2_28_$(uname -m)" \
        --platform "manylinux_2_17_$(uname -m)" --platform "manylinux2014_$(uname -m)" --platform any "$@"
}
if [ "$OFFLINE" = yes ]; then
    stand_in "$OFFLINE_PYTHON" python3 python3-venv ca-certificates
    stand_in "$OFFLINE_REDIS" redis-server
    PYTHON_IMAGE=$OFFLINE_PYTHON
    REDIS_IMAGE=$OFFLINE_REDIS
    say "downloading the wheelhouse (the pinned dependencies) on this host"
    VENV=${VENV:-.venv} scripts/bootstrap.sh
    .venv/bin/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" >services/wheelhouse/requirements.txt
    # pip does not apply python_full_version markers for another interpreter, so async-timeout
    # (redis, < 3.11.3) is named.
    wheels services/wheelhouse -r services/wheelhouse/requirements.txt setuptools async-timeout
    if [ "$DEMO" = yes ]; then
        say "downloading the S3 test server's wheels (moto[server]) on this host"
        wheels services/s3-demo/wheelhouse "moto[server]"
        stand_in "$OFFLINE_POSTGRES" postgresql-15
        POSTGRES_IMAGE=$OFFLINE_POSTGRES
    fi
    if [ "$MONITORING" = yes ]; then
        stand_in "$OFFLINE_PROMETHEUS" prometheus
        stand_in "$OFFLINE_ALERTMANAGER" prometheus-alertmanager
        PROMETHEUS_IMAGE=$OFFLINE_PROMETHEUS
        ALERTMANAGER_IMAGE=$OFFLINE_ALERTMANAGER
    fi
fi

cat >.images.env <<EOF
MODELYARD_VERSION=$VERSION
PYTHON_IMAGE=$PYTHON_IMAGE
REDIS_IMAGE=$REDIS_IMAGE
EOF
if [ -f .env ]; then # so that a plain `docker compose ...` here runs these images
    for key in MODELYARD_VERSION PYTHON_IMAGE REDIS_IMAGE; do
        value=$(sed -n "s/^$key=//p" .images.env)
        if grep -q "^$key=" .env; then sed -i "s|^$key=.*|$key=$value|" .env; else echo "$key=$value" >>.env; fi
    done
fi
pinned() { sed -n "s/^$1==//p" constraints.txt; }
export MODELYARD_VERSION=$VERSION PYTHON_IMAGE REDIS_IMAGE MODELYARD_REDIS_PASSWORD=unused-by-builds
export COMPOSE_BAKE=false # Compose's own builder: Bake wants the buildx plugin, which Debian's engine lacks
say "building modelyard $VERSION images on $PYTHON_IMAGE"
started=$(date +%s)
docker compose --env-file .images.env build \
    --build-arg "SKLEARN_VERSION=$(pinned scikit-learn)" \
    --build-arg "NUMPY_VERSION=$(pinned numpy)" \
    --build-arg "PANDAS_VERSION=$(pinned pandas)" \
    api worker scheduler
docker tag "modelyard/api:$VERSION" modelyard/api:latest
docker tag "modelyard/worker:$VERSION" modelyard/worker:latest
docker tag "modelyard/scheduler:$VERSION" modelyard/scheduler:latest
if [ "$DEMO" = yes ]; then
    say "building the demo profile's S3 test server (moto $(pinned moto); not for production)"
    docker compose --env-file .images.env --profile demo build --build-arg "MOTO_VERSION=$(pinned moto)" s3
    say "building the demo profile's PostgreSQL on $POSTGRES_IMAGE (not for production)"
    docker compose --env-file .images.env --profile demo build --build-arg "POSTGRES_IMAGE=$POSTGRES_IMAGE" postgres
fi
if [ "$MONITORING" = yes ]; then
    say "building the monitoring profile's Prometheus on $PROMETHEUS_IMAGE, Alertmanager on $ALERTMANAGER_IMAGE"
    docker compose --env-file .images.env --profile monitoring build \
        --build-arg "PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE" prometheus
    docker compose --env-file .images.env --profile monitoring build \
        --build-arg "ALERTMANAGER_IMAGE=$ALERTMANAGER_IMAGE" alertmanager
fi
say "built in $(($(date +%s) - started)) s:"
docker images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' |
    grep -E "modelyard/(api|worker|scheduler|s3-demo|postgres-demo|prometheus|alertmanager):$VERSION " >&2

#!/bin/sh
# The real-time API: MODELYARD_API_PROCESSES server processes (0: one per core). With more than one,
# a parent loads the models and forks the servers, which share them (and forks fresh ones after a
# promotion); /metrics sums them (prometheus-client multiprocess).
set -eu
if [ -z "${MODELYARD_API_KEY:-}" ] && [ "${MODELYARD_PUBLISHED_ON:-127.0.0.1}" != "127.0.0.1" ]; then
    echo "refusing to start: the API would be published on ${MODELYARD_PUBLISHED_ON} without" \
        "MODELYARD_API_KEY. Set a key in .env, or publish on 127.0.0.1 only." >&2
    exit 1
fi
processes=${MODELYARD_API_PROCESSES:-0}
[ "$processes" -gt 0 ] || processes=$(nproc)
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-/tmp/modelyard-metrics}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
exec modelyard serve --host 0.0.0.0 --port 8000 --processes "$processes" "$@"

#!/bin/sh
# A batch worker. Its name is the container's and a random suffix: a restarted container must not
# wait for its dead predecessor's registration in Redis to expire.
set -eu
suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
exec modelyard worker --name "${HOSTNAME:-worker}-${suffix}" "$@"

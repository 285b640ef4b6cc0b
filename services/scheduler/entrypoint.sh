#!/bin/sh
# The scheduler: enqueues the schedules' runs; one replica (a second would claim nothing twice,
# but has nothing to add). Its healthcheck is `modelyard scheduler --check` (the heartbeat file).
set -eu
exec modelyard scheduler "$@"

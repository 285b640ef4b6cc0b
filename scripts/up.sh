#!/usr/bin/env bash
# `make up`: the whole stack on this machine, registry or not. Installs and starts Docker if
# needed, writes .env from .env.example (with a random Redis password) the first time, builds the
# images (offline when nothing can be pulled), starts everything and waits until it is healthy,
# then trains the demo model into the models volume if no model is registered yet. With the demo
# profile on (COMPOSE_PROFILES=demo in .env), the S3 test server's and the demo PostgreSQL's images
# are built and started too, with a random PostgreSQL password written to .env the first time; with
# the monitoring profile on (COMPOSE_PROFILES=monitoring), Prometheus's and Alertmanager's.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "up.sh: $*" >&2; }

if [ ! -f .env ]; then
    say "writing .env from .env.example with a random Redis password"
    password=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    sed "s/^MODELYARD_REDIS_PASSWORD=.*/MODELYARD_REDIS_PASSWORD=$password/" .env.example >.env
    chmod 600 .env
fi

scripts/docker.sh
demo=
monitoring=
services=$(docker compose config --services) # read whole: `| grep -q` could cut compose off mid-write
if grep -qx s3 <<<"$services"; then demo=--demo; fi                      # the demo profile is on
if grep -qx prometheus <<<"$services"; then monitoring=--monitoring; fi # the monitoring profile is on
if [ -n "$demo" ] && ! grep -q '^MODELYARD_POSTGRES_PASSWORD=.' .env; then
    say "writing a random password for the demo PostgreSQL (role modelyard) to .env"
    sed -i '/^MODELYARD_POSTGRES_PASSWORD=/d' .env
    echo "MODELYARD_POSTGRES_PASSWORD=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >>.env
fi
scripts/images.sh $demo $monitoring # also writes the images it built into .env
docker compose up -d --wait --remove-orphans
docker compose run --rm admin modelyard demo train --if-missing
port=$(sed -n 's/^MODELYARD_PORT=//p' .env)
port=${port:-8000}
key_header=
if grep -q '^MODELYARD_API_KEY=.' .env; then # printed as a command that reads the key from .env
    key_header=" -H \"Authorization: Bearer \$(sed -n 's/^MODELYARD_API_KEY=//p' .env)\""
fi
cat <<EOF

modelyard is up: http://127.0.0.1:$port (console: http://127.0.0.1:$port/ui/, docs: http://127.0.0.1:$port/docs)
  curl -s$key_header localhost:$port/v1/models/churn/predict -d '{"instances": [{"tenure_months": 3,
    "monthly_charges": 89.5, "support_calls": 4, "data_usage_gb": 12.0, "plan": "premium",
    "contract": "month-to-month", "payment_method": "invoice", "region": "north"}]}'
  make down   # stop it; the volumes stay (docker compose down -v removes them)
EOF
if [ -n "$demo" ]; then
    cat <<EOF
  docker compose exec s3 s3-demo ls s3://scores/   # the demo profile's S3 test server (not for production)
  docker compose exec postgres psql -c 'select count(*) from landing.customers'   # its PostgreSQL
EOF
fi
if [ -n "$monitoring" ]; then
    prometheus=$(sed -n 's/^MODELYARD_PROMETHEUS_PORT=//p' .env)
    alertmanager=$(sed -n 's/^MODELYARD_ALERTMANAGER_PORT=//p' .env)
    cat <<EOF
  Prometheus (monitoring profile): http://127.0.0.1:${prometheus:-9090}/classic/alerts
  docker compose exec alertmanager amtool alert   # its Alertmanager (API: http://127.0.0.1:${alertmanager:-9093}/api/v2/alerts)
EOF
fi

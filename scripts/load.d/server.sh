# shellcheck shell=bash
# What scripts/load and scripts/load-compare share: a server under test on a fresh
# database with the rate limits off (all load comes from one address), and its load user.
# Sourced after scripts/install (baton_free_port).

# Starts server binary $1 with data directory $2 (`backend`: sqlite, or postgres through
# scripts/with-postgres, which gets a new database) and waits until it answers. Sets
# server_pid and base.
baton_load_server() { # binary, data directory
    local bin=$1 data=$2 database_url port
    database_url="sqlite://$data/baton.db"
    if [[ $backend == postgres ]]; then
        local admin=${BATON_TEST_POSTGRES_URL:?run through scripts/with-postgres} db
        db=baton_load_$RANDOM$RANDOM
        psql -q "$admin" -c "CREATE DATABASE $db"
        database_url="${admin%/*}/$db"
    fi
    port=$(baton_free_port)
    base="http://127.0.0.1:$port"
    env BATON_DATA_DIR="$data" DATABASE_URL="$database_url" BATON_BIND="127.0.0.1:$port" \
        BATON_LOGIN_LIMIT_PER_IP=0 BATON_REFRESH_LIMIT_PER_IP=0 \
        BATON_LOGIN_FAILURES_PER_ADDRESS=0 BATON_LOGIN_FAILURES_PER_ACCOUNT=0 \
        BATON_PUBLIC_ORIGIN="$base" BATON_DB_MAX_CONNECTIONS=16 BATON_METRICS_TOKEN="$baton_load_metrics_token" LEPTOS_OUTPUT_NAME=baton LEPTOS_SITE_ROOT=target/site \
        LEPTOS_ENV=PROD RUST_LOG=warn "$bin" >"$data/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        curl -fs "$base/api/health" >/dev/null && break
        sleep 0.1
    done
    curl -fs "$base/api/health" >/dev/null || { cat "$data/server.log"; return 1; }
}

# `GET /metrics` of the server under test: curl -H "authorization: Bearer $token".
baton_load_metrics_token=load-metrics-token-0123456789abcdef

export LOAD_USER=loaduser LOAD_PASSWORD="load test password"
load_json='{"username":"'$LOAD_USER'","password":"'$LOAD_PASSWORD'"}'

# Registers the load user on $base and exports an ACCESS_TOKEN of theirs.
baton_load_user() {
    curl -fs -H 'content-type: application/json' -d "$load_json" "$base/api/auth/register" >/dev/null
    ACCESS_TOKEN=$(login | field access_token | head -n 1)
    export ACCESS_TOKEN
}

login() { curl -fs -H 'content-type: application/json' -d "$load_json" "$base/api/auth/login"; }
field() { sed -E 's/.*"'"$1"'":"([^"]+)".*/\1/'; echo; }

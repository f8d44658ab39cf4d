#!/usr/bin/env bash
# Holds a live `gatehouse serve` to its own OpenAPI document (SPEC §15):
# schemathesis with every check, authenticated as a human session, then
# a client generated from the document mints a token and creates a job.
#
# Private virtual environment (pinned versions), fresh data directory,
# ephemeral loopback ports; the server is stopped on exit. Called by
# .ci/run; runnable alone from the repository root:
#   bash .ci/schemathesis.sh
# Knobs: SCHEMATHESIS_MAX_EXAMPLES (default 50), GATEHOUSE_CI_VENV.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"
OPENAPI_CLIENT_VERSION="0.29.1"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
venv="${GATEHOUSE_CI_VENV:-$target/ci-venv}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-50}"

python="$(command -v python3 || true)"
if [ -z "$python" ] || ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "schemathesis: installing python3-venv"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  python="$(command -v python3)"
fi
stamp="$venv/.gatehouse-pins"
pins="schemathesis==$SCHEMATHESIS_VERSION openapi-python-client==$OPENAPI_CLIENT_VERSION"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$pins" ]; then
  echo "schemathesis: creating $venv ($pins)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check $pins
  echo "$pins" >"$stamp"
fi

echo "schemathesis: building gatehouse"
cargo build -q -p gatehouse
bin="$target/debug/gatehouse"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
api_port="$(free_port)"
proxy_port="$(free_port)"
url="http://127.0.0.1:$api_port"
code="SCHEMATHESIS-CI-BOOTSTRAP"
(
  cd "$work"
  env -i PATH="$PATH" HOME="$work" \
    GATEHOUSE_DATA_DIR="$work/data" \
    GATEHOUSE_LISTEN="127.0.0.1:$api_port" \
    GATEHOUSE_EGRESS_LISTEN="127.0.0.1:$proxy_port" \
    GATEHOUSE_BOOTSTRAP_CODE="$code" \
    RUST_LOG=warn \
    "$bin" serve
) >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
curl -fsS "$url/healthz" >/dev/null

token="$(curl -fsS -X POST "$url/v1/bootstrap/claim" \
  -H 'Content-Type: application/json' \
  -d "{\"code\":\"$code\",\"email\":\"fuzz@ci.example.org\"}" |
  "$python" -c 'import json,sys; print(json.load(sys.stdin)["token"])')"

# The generated client first, on a clean server: mint a token, create a job.
echo "schemathesis: a client generated from the document mints a token and creates a job"
"$venv/bin/python" .ci/generated_client.py "$url" "$token" "$work/client"

# Two operations end the fuzzing session itself when drawn with its own
# owner (they revoke every token of it): revoke_tokens (owner or subject)
# and recover_owner. Everything else runs; see README "API contract".
echo "schemathesis: run against $url (max $max_examples examples per operation)"
status=0
config="$PWD/.ci/schemathesis.toml"
# From the scratch directory: schemathesis and hypothesis keep their
# caches in the working directory, which is removed on exit.
(cd "$work" && "$venv/bin/schemathesis" --config-file "$config" run "$url/v1/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $token" \
  --max-examples "$max_examples" \
  --seed 20261206 \
  --workers 1 \
  --no-color \
  --exclude-operation-id revoke_tokens \
  --exclude-operation-id recover_owner) \
  || status=$?
if grep -q "panicked" "$work/server.log"; then
  echo "schemathesis: the server panicked" >&2
  grep -n "panicked" "$work/server.log" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "schemathesis: server log (last 50 lines):" >&2
  tail -n 50 "$work/server.log" >&2
  exit "$status"
fi
echo "schemathesis: clean"

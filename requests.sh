#!/usr/bin/env bash
# Sends samples/car.jpg three times to POST /process_image/ and checks that every answer is
# HTTP 200 with {"message": "success", ...}. Prints each response body on its own line.
#   API_URL      (default http://localhost:8000)
#   PIPELINE_ID  (default 1)
#   API_KEY      sent as X-API-Key when set; when unset, the development key in .env is used
#                (docker compose requires it; make run ignores it)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
image="$here/samples/car.jpg"
api_url="${API_URL:-http://localhost:8000}"
pipeline_id="${PIPELINE_ID:-1}"

if [[ ! -f "$image" ]]; then
    echo "error: sample image not found: $image" >&2
    exit 2
fi

if [[ -z "${API_KEY+set}" && -f "$here/.env" ]]; then
    API_KEY="$(sed -n 's/^API_KEY=//p' "$here/.env")"
fi
headers=()
if [[ -n "${API_KEY:-}" ]]; then
    headers=(-H "X-API-Key: $API_KEY")
fi

body_file="$(mktemp)"
trap 'rm -f "$body_file"' EXIT

failures=0
for i in 1 2 3; do
    : >"$body_file"
    status="$(curl -sS --max-time 60 -o "$body_file" -w '%{http_code}' \
        ${headers[@]+"${headers[@]}"} \
        -F "image=@$image" \
        "$api_url/process_image/?pipeline_id=$pipeline_id")" || status="000"
    cat "$body_file"
    echo
    if [[ "$status" != "200" ]]; then
        echo "request $i: HTTP $status" >&2
        failures=$((failures + 1))
    elif ! python3 -c '
import json, sys
try:
    body = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit(1)
sys.exit(0 if isinstance(body, dict) and body.get("message") == "success" else 1)
' "$body_file"; then
        echo "request $i: response is not {\"message\": \"success\"}" >&2
        failures=$((failures + 1))
    fi
done

if ((failures > 0)); then
    echo "$failures of 3 requests failed" >&2
    exit 1
fi

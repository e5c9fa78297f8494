#!/bin/sh
# Sends samples/car.jpg three times to POST /process_image/ and checks that every answer is
# HTTP 200 with {"message": "success", ...}. Prints each response body on its own line.
# Needs only a POSIX sh, curl, sed and grep. Exits 0 when all three succeed, 1 when any does
# not, 2 when it cannot start (no sample image).
#   API_URL      (default http://localhost:8000)
#   PIPELINE_ID  (default 1)
#   API_KEY      sent as X-API-Key when set; when unset, the development key in .env is used
#                (docker compose requires it; make run ignores it)
set -u

here="$(cd "$(dirname "$0")" && pwd)"
image="$here/samples/car.jpg"
api_url="${API_URL:-http://localhost:8000}"
pipeline_id="${PIPELINE_ID:-1}"

if [ ! -f "$image" ]; then
    echo "error: sample image not found: $image" >&2
    exit 2
fi

# The last API_KEY= line of .env, without a trailing CR or surrounding quotes.
if [ -z "${API_KEY+set}" ] && [ -f "$here/.env" ]; then
    API_KEY="$(sed -n -e 's/\r$//' -e 's/^API_KEY=//p' "$here/.env" | sed -n -e '$s/^"\(.*\)"$/\1/' -e "\$s/^'\\(.*\\)'\$/\\1/" -e '$p')"
fi

body_file="$(mktemp)" || exit 2
trap 'rm -f "$body_file"' EXIT

failures=0
for i in 1 2 3; do
    : >"$body_file"
    if [ -n "${API_KEY:-}" ]; then
        set -- -H "X-API-Key: $API_KEY"
    else
        set --
    fi
    status="$(curl -sS --max-time 60 -o "$body_file" -w '%{http_code}' "$@" \
        -F "image=@$image" \
        "$api_url/process_image/?pipeline_id=$pipeline_id")" || status="000"
    cat "$body_file"
    echo
    if [ "$status" != "200" ]; then
        echo "request $i: HTTP $status" >&2
        failures=$((failures + 1))
    elif ! grep -Eq '^[[:space:]]*\{.*"message"[[:space:]]*:[[:space:]]*"success"' "$body_file"; then
        echo "request $i: response is not {\"message\": \"success\"}" >&2
        failures=$((failures + 1))
    fi
done

if [ "$failures" -gt 0 ]; then
    echo "$failures of 3 requests failed" >&2
    exit 1
fi

#!/usr/bin/env bash
# End-to-end smoke test of a running sysevents API, with curl.
#
#   scripts/smoke.sh http://127.0.0.1:8000 [KEY]
#
# KEY (or SYSEVENTS_API_KEY) is an API key with the read, write and admin
# scopes, for a server that requires keys. Prints each check; exits non-zero
# on the first failure.
set -euo pipefail

BASE="${1:-${SYSEVENTS_BASE_URL:-http://127.0.0.1:8000}}"
BASE="${BASE%/}"
KEY="${2:-${SYSEVENTS_API_KEY:-}}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
TYPE="smoke_$(date +%s)_$$"
STEP=0

fail() {
    echo "FAIL: $*" >&2
    if [[ -s "$TMP/body" ]]; then
        echo "--- response body:" >&2
        head -c 2000 "$TMP/body" >&2
        echo >&2
    fi
    exit 1
}

# request METHOD PATH [JSON]: sets STATUS, body in $TMP/body, headers in $TMP/headers
request() {
    local method="$1" path="$2" data="${3:-}"
    local args=(-sS -X "$method" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time 20)
    if [[ -n "$data" ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$data")
    fi
    if [[ -n "$KEY" ]]; then
        args+=(-H "Authorization: Bearer $KEY")
    fi
    STATUS="$(curl "${args[@]}" "$BASE$path")" || fail "$method $path: curl could not reach $BASE"
}

expect() {
    local want="$1" what="$2"
    STEP=$((STEP + 1))
    if [[ "$STATUS" != "$want" ]]; then
        fail "check $STEP, $what: expected HTTP $want, got $STATUS"
    fi
    echo "ok $STEP - $what ($STATUS)"
}

contains() {
    local needle="$1" what="$2"
    grep -q -- "$needle" "$TMP/body" || fail "$what: response lacks $needle"
}

json_field() {  # json_field NAME: the value of a top-level number field of the body
    sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" "$TMP/body" | head -n 1
}

request GET /api/health
expect 200 "health"
contains '"status":"ok"' "health"

request POST /api/events "{\"event_type\":\"$TYPE\",\"severity\":\"warning\",\"message\":\"smoke test\",\"details\":{\"check\":true},\"source\":\"smoke\"}"
expect 201 "create an event"
ID="$(json_field id)"
[[ -n "$ID" ]] || fail "create: no id in the response"
grep -qi "^location: /api/events/$ID" "$TMP/headers" || fail "create: no Location header"

request GET "/api/events/$ID"
expect 200 "get the event"
contains "\"event_type\":\"$TYPE\"" "get"

request GET /api/events/9223372036854775807
expect 404 "get a missing event"
contains '"status":404' "get missing"

request GET "/api/events?limit=5"
expect 200 "list events"
contains '"items":' "list"

request GET "/api/events?event_type=$TYPE"
expect 200 "list by type"
contains "\"id\":$ID," "list by type"

request GET "/api/events?event_type=$TYPE&severity=warning&severity=error"
expect 200 "list by severity"
contains "\"id\":$ID," "list by severity"

request PUT "/api/events/$ID" '{"message":"smoke test, corrected","severity":"error"}'
expect 200 "update the event"
contains '"message":"smoke test, corrected"' "update"

request PUT /api/events/9223372036854775807 '{"message":"nobody"}'
expect 404 "update a missing event"

request GET "/api/events/stats?event_type=$TYPE"
expect 200 "stats"
contains '"total":1' "stats"
contains '"error":1' "stats"

request DELETE "/api/events/$ID"
expect 204 "delete the event"

request GET "/api/events/$ID"
expect 404 "get the deleted event"

request GET /api/health/db
expect 200 "store health"

request POST /api/events '{"event_type":"","message":""}'
expect 400 "reject an invalid event"
contains '"errors":' "invalid event"

echo "all $STEP checks passed against $BASE"

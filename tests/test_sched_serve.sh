#!/usr/bin/env bash
# test_sched_serve.sh — weft serve with scheduling options (stories260K): --policy rtlm with two
# workers (--workers 2, one thread each, primary --max-running 1). Requests without a deadline
# all stay on the primary; once the primary has a long backlog, a request whose deadline_ms the
# primary cannot meet but the idle secondary can (the deadline centred between the two predicted
# completions that the router itself computes, read from /metrics) is offloaded to worker 1 and
# completes, while a deadline the idle primary can meet stays there; /metrics shows the policy,
# the routing, the router's view, the scheduler time per step, deadlines and predicted vs actual
# lengths. Bad scheduling flags are
# refused with a precise message.
# usage: tests/test_sched_serve.sh BUILD_DIR SHARED_DIR
set -euo pipefail
build=$1
shared=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
source "$src/tests/support/serve_lib.sh"
require_tools

# bad flags
out=$("$weft" serve --model "$gguf" --policy sjf 2>&1) && fail "--policy sjf accepted"
grep -q "expects one of fcfs|priority|spf|laxity|rtlm" <<<"$out" || fail "policy message: $out"
out=$("$weft" serve --model "$gguf" --workers 9 2>&1) && fail "--workers 9 accepted"
grep -q "workers.*\[1, 4\]" <<<"$out" || fail "workers message: $out"
out=$("$weft" serve --model "$gguf" --predictor /nonexistent/params 2>&1) && fail "bad predictor accepted"
grep -q "nonexistent" <<<"$out" || fail "predictor message: $out"
out=$("$weft" serve --model "$gguf" --late-policy later 2>&1) && fail "--late-policy later accepted"
grep -q "expects one of keep|demote|drop" <<<"$out" || fail "late-policy message: $out"
out=$("$weft" serve --model "$gguf" --rtlm-rank srpt 2>&1) && fail "--rtlm-rank srpt accepted"
grep -q "expects one of p90|gittins" <<<"$out" || fail "rtlm-rank message: $out"
out=$(WEFT_RTLM_RANK=p50 "$weft" serve --model "$gguf" 2>&1) && fail "WEFT_RTLM_RANK=p50 accepted"
grep -q "rtlm-rank (env WEFT_RTLM_RANK) expects one of p90|gittins" <<<"$out" || fail "env message: $out"
out=$("$weft" serve --model "$gguf" --preempt-compare all 2>&1) && fail "--preempt-compare all accepted"
grep -q "expects one of auto|benefit|victim" <<<"$out" || fail "preempt-compare message: $out"

start_server sched --ctx 512 --threads 1 --max-running 1 --workers 2 --secondary-threads 1 \
    --secondary-max-running 2 --policy rtlm --kv-layout paged
grep -q "policy rtlm, 2 worker(s)" "$tmp/sched.err" || fail "no policy line: $(cat "$tmp/sched.err")"
healthy || fail "not healthy"

# a backlog on the primary: 32 long requests, no deadline
for i in $(seq 1 32); do
    curl -s -m $((120 * slow)) -o "$tmp/long$i.json" -H 'Content-Type: application/json' \
        -d '{"prompt":"Once upon a time","max_tokens":200,"temperature":0,"ignore_eos":true}' \
        "$url/v1/completions" &
    bgpids+=($!)
done
# wait until every long request was routed (33 with the health check) and the primary has a backlog
for i in $(seq 1 $((100 * slow))); do
    curl -s -m 5 "$url/metrics" >"$tmp/m1"
    routed=$(metric 'weft_worker_requests_routed_total{worker="0",policy="rtlm"}' "$tmp/m1")
    steps=$(metric 'weft_sched_steps_total{worker="0",policy="rtlm"}' "$tmp/m1")
    queued=$(metric 'weft_worker_requests_waiting{worker="0",policy="rtlm"}' "$tmp/m1")
    [ "${routed:-0}" -ge 33 ] && [ "${steps:-0}" -ge 50 ] && [ "${queued:-0}" -ge 24 ] && break
    sleep 0.05
done
[ "${steps:-0}" -ge 50 ] || fail "the primary did not step"
[ "$routed" = 33 ] || fail "expected 33 requests routed to the primary, got $routed"
[ "$queued" -ge 24 ] || fail "expected a backlog on the primary, $queued waiting"
# The deadline request (dl_tokens = 2 tokens) must be offloaded: the primary cannot meet its
# deadline behind its backlog, the idle secondary can. The deadline comes from the router's own
# view (/metrics): the recent step times (weft_step_time_recent_seconds, the EWMA the router
# prices steps with; the unmeasured secondary is priced at the slowest measured worker, so both
# are priced at the primary's) and the predicted queueing delays
# (weft_worker_predicted_delay_seconds). need0 = the primary's predicted completion (>= ~750 queued
# predicted tokens + 2, one step each), need1 = the secondary's (2 steps); the deadline is their
# geometric mean, so the step time the router sees when it routes may differ from the one read
# by sqrt(need0 / need1) (>= ~19x) either way before the decision flips. On a busy machine the
# EWMA jumps after every step that lost the CPU and decays over the next steps, so the view is
# read 5 times and the deadlines' geometric mean is sent. A burst of slow steps can still move it
# that far, so a request the primary kept is followed by a fresh attempt (at most 6); the kept
# ones are counted and every count below stays exact. Broken offloading still fails: never
# offloading exhausts the attempts, and requests without a deadline (and one that the primary can
# meet, below) must stay on the primary.
dl_tokens=2
route_view() { # $1 = metrics file: prints "deadline_s need0_s need1_s"
    awk -v p="$dl_tokens" '
         $1 ~ /^weft_step_time_recent_seconds\{worker="[0-9]+",policy="rtlm"\}$/ {
             w = $1; sub(/.*worker="/, "", w); sub(/".*/, "", w); rec[w] = $2; if ($2 > mx) mx = $2 }
         $1 ~ /^weft_worker_predicted_delay_seconds\{worker="[0-9]+",policy="rtlm"\}$/ {
             w = $1; sub(/.*worker="/, "", w); sub(/".*/, "", w); del[w] = $2 }
         END {
             if (mx <= 0) mx = 0.05
             s0 = rec[0] > 0 ? rec[0] : mx; s1 = rec[1] > 0 ? rec[1] : mx
             n0 = del[0] + p * s0; n1 = del[1] + p * s1
             printf "%.9f %.9f %.9f\n", sqrt(n0 * n1), n0, n1 }' "$1"
}
longpids=("${bgpids[@]}")
kept=0
dlpids=()
for attempt in 1 2 3 4 5 6; do
    views=()
    for v in 1 2 3 4 5; do
        curl -s -m 5 "$url/metrics" >"$tmp/mv"
        read -r d need0 need1 < <(route_view "$tmp/mv")
        awk -v a="$need0" -v b="$need1" 'BEGIN { exit !(a > 4 * b && b > 0) }' ||
            fail "no backlog in the router's view: primary ${need0}s, secondary ${need1}s" \
                "(the deadline request was not offloaded in $kept attempts before)"
        views+=("$d")
        [ "$v" = 5 ] || sleep 0.02
    done
    deadline_ms=$(printf '%s\n' "${views[@]}" |
        awk '{ l += log($1); n++ } END { printf "%.3f", 1000 * exp(l / n) }')
    waiting=$(metric 'weft_worker_requests_waiting{worker="0",policy="rtlm"}' "$tmp/mv")
    echo "attempt $attempt: primary needs ${need0}s ($waiting waiting), secondary ${need1}s; deadlines ${views[*]} s; deadline ${deadline_ms} ms"
    curl -s -m $((120 * slow)) -o "$tmp/dl$attempt.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"prompt\":\"Once upon a time\",\"max_tokens\":$dl_tokens,\"temperature\":0,\"ignore_eos\":true,\"deadline_ms\":$deadline_ms}" \
        "$url/v1/completions" >"$tmp/dl$attempt.code" &
    dlpids+=($!)
    bgpids+=($!)
    for i in $(seq 1 $((100 * slow))); do # until it is routed
        curl -s -m 5 "$url/metrics" >"$tmp/mr"
        r0=$(metric 'weft_worker_requests_routed_total{worker="0",policy="rtlm"}' "$tmp/mr")
        r1=$(metric 'weft_worker_requests_routed_total{worker="1",policy="rtlm"}' "$tmp/mr")
        [ $((r0 + r1)) -ge $((33 + attempt)) ] && break
        sleep 0.02
    done
    [ $((r0 + r1)) = $((33 + attempt)) ] || fail "attempt $attempt: routed $r0 + $r1"
    [ "$r1" = 1 ] && break
    [ "$r1" = 0 ] || fail "routed to worker 1: $r1"
    kept=$((kept + 1))
    echo "attempt $attempt: kept by the primary"
done
[ "$r1" = 1 ] || fail "the deadline request was not offloaded in $kept attempts (routed to worker 1: $r1)"
for a in $(seq 1 $((kept + 1))); do
    wait "${dlpids[$((a - 1))]}" || fail "deadline request $a: curl failed"
    [ "$(cat "$tmp/dl$a.code")" = 200 ] || fail "deadline request $a: HTTP $(cat "$tmp/dl$a.code") $(cat "$tmp/dl$a.json")"
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["usage"]["completion_tokens"] == int(sys.argv[2])' \
        "$tmp/dl$a.json" "$dl_tokens" || fail "deadline request $a: wrong length"
done

for p in "${longpids[@]}"; do wait "$p" || fail "a long request failed"; done
bgpids=()
for i in $(seq 1 32); do
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["usage"]["completion_tokens"] == 200' \
        "$tmp/long$i.json" || fail "long request $i incomplete"
done
wait_idle $((10 * slow)) || fail "not idle"
curl -s -m 5 "$url/metrics" >"$tmp/m2"
r0=$(metric 'weft_worker_requests_routed_total{worker="0",policy="rtlm"}' "$tmp/m2")
[ "$r0" = $((33 + kept)) ] ||
    fail "expected $((33 + kept)) requests on the primary (32 long + the health check + $kept kept), got $r0"
[ "$(metric 'weft_worker_requests_routed_total{worker="1",policy="rtlm"}' "$tmp/m2")" = 1 ] ||
    fail "expected exactly one request on worker 1"
grep -q '^weft_sched_policy{policy="rtlm"} 1' "$tmp/m2" || fail "no policy metric"
[ "$(metric 'weft_deadline_requests_total{worker="1",policy="rtlm"}' "$tmp/m2")" = 1 ] ||
    fail "worker 1 did not count the deadline request"
[ "$(metric 'weft_deadline_requests_total{worker="0",policy="rtlm"}' "$tmp/m2")" = "$kept" ] ||
    fail "worker 0 did not count its $kept kept deadline requests"
pn=$(metric 'weft_predicted_requests_total{worker="0",policy="rtlm"}' "$tmp/m2")
[ "$pn" = $((33 + kept)) ] || fail "predicted requests on the primary: $pn (want 33 + $kept)"
act=$(metric 'weft_actual_tokens_total{worker="0",policy="rtlm"}' "$tmp/m2")
[ "$act" = $((6404 + dl_tokens * kept)) ] ||
    fail "actual tokens on the primary: $act (want 32 * 200 + 4 + $dl_tokens * $kept)"
# the bench-only bench_output_tokens: exactly that many tokens under a larger max_tokens (the
# scheduler's cap); more than max_tokens is refused with a precise error
code=$(curl -s -m $((60 * slow)) -o "$tmp/bo.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":40,"bench_output_tokens":7,"temperature":0,"ignore_eos":true}' \
    "$url/v1/completions")
[ "$code" = 200 ] || fail "bench_output_tokens: HTTP $code $(cat "$tmp/bo.json")"
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["usage"]["completion_tokens"] == 7, j' \
    "$tmp/bo.json" || fail "bench_output_tokens: wrong length"
code=$(curl -s -m 10 -o "$tmp/bo2.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":4,"bench_output_tokens":7}' "$url/v1/completions")
[ "$code" = 400 ] && grep -q "bench_output_tokens" "$tmp/bo2.json" ||
    fail "bench_output_tokens over max_tokens: HTTP $code $(cat "$tmp/bo2.json")"
# a deadline the idle primary can meet (60 s for 20 tokens): the primary keeps it
code=$(curl -s -m $((60 * slow)) -o "$tmp/dl0.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":20,"temperature":0,"ignore_eos":true,"deadline_ms":60000}' \
    "$url/v1/completions")
[ "$code" = 200 ] || fail "loose deadline request: HTTP $code $(cat "$tmp/dl0.json")"
curl -s -m 5 "$url/metrics" >"$tmp/m3"
[ "$(metric 'weft_worker_requests_routed_total{worker="0",policy="rtlm"}' "$tmp/m3")" = $((35 + kept)) ] &&
    [ "$(metric 'weft_worker_requests_routed_total{worker="1",policy="rtlm"}' "$tmp/m3")" = 1 ] ||
    fail "a deadline the primary can meet was offloaded: $(grep '^weft_worker_requests_routed' "$tmp/m3")"
wait_idle $((10 * slow)) || fail "not idle"
curl -s -m 5 "$url/metrics" >"$tmp/m2"
st=$(metric 'weft_sched_time_seconds_total{worker="0",policy="rtlm"}' "$tmp/m2")
tot=$(metric 'weft_step_time_seconds_total{worker="0",policy="rtlm"}' "$tmp/m2")
awk -v a="$st" -v b="$tot" 'BEGIN { exit !(a > 0 && a < b) }' || fail "scheduler time $st of $tot"
stop_server "$pid"
echo "PASS: test_sched_serve"

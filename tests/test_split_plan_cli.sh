#!/usr/bin/env bash
# test_split_plan_cli.sh — end-to-end check of `weft split profile`, `weft split link-sink` and
# `weft bench split`: profiles of a synthesized model (client and fused-batch server) are valid
# JSON with non-negative costs; the link measured against a local link sink has a positive
# bandwidth and an RTT; `bench split` on the two profiles runs all four plans, the DP never needs
# more server work than greedy or no split, and every plan keeps every SLA; bad input exits 1
# with its message, misuse exits 2. Then profiles the real stories260K from ../shared, or exits
# 77 (skip, loudly) when ../shared is absent.
# usage: tests/test_split_plan_cli.sh BUILD_DIR SHARED_DIR
set -u
build=$1
shared=${2:-}
weft="$build/weft"
tmp=$(mktemp -d)
sink_pid=
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
py=/usr/bin/python3

"$weft" model synth --preset tiny15m --type q8_0 --layers 3 --ctx 256 --out "$tmp/m.gguf" >/dev/null \
    || fail "synth exited $?"
"$weft" split profile --model "$tmp/m.gguf" --threads 1 --reps 2 --prompt-tokens 16 \
    --out "$tmp/c.json" || fail "client profile exited $?"
"$weft" split profile --model "$tmp/m.gguf" --threads 2 --batch 4 --reps 2 --prompt-tokens 16 \
    --slow 0.5 >"$tmp/s.json" || fail "server profile (stdout) exited $?"
$py - "$tmp/c.json" "$tmp/s.json" <<'PY' || fail "profile JSON check"
import json, sys
c, s = (json.load(open(p)) for p in sys.argv[1:3])
for p, threads, batch in ((c, 1, 1), (s, 2, 4)):
    assert p["n_layers"] == 3 and p["dim"] == 288 and p["kv_dim"] == 288, p
    assert p["threads"] == threads and p["decode_batch"] == batch and p["k_lo"] == 1 and p["k_hi"] == 3, p
    cost = p["cost"]
    for k in ("layer_prefill_s", "layer_decode_s", "head_prefill_s", "head_decode_s"):
        assert cost[k] >= 0, (k, cost)
    # Timing noise may flatten a slope to 0 (clamped, never negative), but the whole model's
    # predicted time is a measured, positive time.
    L = p["n_layers"]
    assert cost["head_decode_s"] + L * cost["layer_decode_s"] > 0, cost
    assert cost["head_prefill_s"] + L * p["prompt_tokens"] * cost["layer_prefill_s"] > 0, cost
    assert "link" not in p
assert "costs x0.5" in s["device"], s["device"]
PY

# The link: a sink on a free local port, then a measured profile.
# (A port another process holds makes the sink exit: try the next one.)
for try in 0 1 2 3 4; do
    port=$((20000 + ($$ + 997 * try) % 20000))
    "$weft" split link-sink --port $port 2>"$tmp/sink.log" &
    sink_pid=$!
    sleep 0.3
    kill -0 $sink_pid 2>/dev/null && grep -q listening "$tmp/sink.log" && break
    wait $sink_pid 2>/dev/null; sink_pid=
done
[ -n "$sink_pid" ] || fail "no free port for the link sink: $(cat "$tmp/sink.log")"
"$weft" split profile --model "$tmp/m.gguf" --threads 1 --reps 1 --prompt-tokens 8 \
    --link 127.0.0.1:$port --out "$tmp/cl.json" 2>"$tmp/cl.log" || fail "link profile exited $?: $(cat "$tmp/cl.log")"
grep -q "link .* MB/s, RTT" "$tmp/cl.log" || fail "no link line: $(cat "$tmp/cl.log")"
$py -c "
import json,sys; l=json.load(open('$tmp/cl.json'))['link']
assert l['bw_Bps'] > 1e6 and 0 <= l['rtt_s'] < 0.5, l" || fail "link fields"
kill $sink_pid; wait $sink_pid 2>/dev/null; sink_pid=
# Given link.
"$weft" split profile --model "$tmp/m.gguf" --threads 1 --reps 1 --prompt-tokens 8 \
    --link-bw 1e6 --link-rtt 0.02 --out "$tmp/cg.json" 2>/dev/null || fail "given link exited $?"
grep -q '"rtt_s": 0.0199999' "$tmp/cg.json" || grep -q '"rtt_s": 0.02' "$tmp/cg.json" || fail "given rtt: $(cat "$tmp/cg.json")"

# bench split on the two profiles.
out=$("$weft" bench split --server-profile "$tmp/s.json" --client-profile "$tmp/c.json" \
      --per-type 2 --sweep --json "$tmp/b.json") || fail "bench split exited $?"
echo "$out" | head -12
for want in "no split" "greedy (arrival)" "greedy (ratio)" "DP" "KV headroom sweep"; do
    echo "$out" | grep -qF "$want" || fail "bench output lacks '$want'"
done
$py - "$tmp/b.json" <<'PY' || fail "bench JSON check"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["requests"] == 128 and b["layers"] == 3 and b["devices"] == 8, b
def check(plans):
    w = {p["plan"]: p["server_cpu_s_total"] for p in plans}
    for p in plans:
        assert p["sla_attainment"] == 1.0, p
    assert [x for x in plans if x["plan"] == "DP"][0]["fits_devices"], plans
    for g in ("greedy (ratio)", "greedy (arrival)"):
        p = [x for x in plans if x["plan"] == g][0]
        if p["fits_kv"] and p["fits_devices"]:
            assert w["DP"] <= w[g] * (1 + 1e-9), w
    assert w["DP"] <= w["no split"] * (1 + 1e-9), w
check(b["plans"])
assert len(b["sweep"]) == 7
for row in b["sweep"]:
    check(row["plans"])
PY

# The KV-bound regime (--objective kv): the DP holds the least KV memory-time, work per request
# is no split's x the plan's KV memory-time / no split's, and the default output has the line.
echo "$out" | grep -q '^KV memory-time vs no split' || fail "default output lacks the KV line"
kout=$("$weft" bench split --server-profile "$tmp/s.json" --client-profile "$tmp/c.json" \
       --per-type 2 --objective kv --json "$tmp/k.json") || fail "bench split --objective kv exited $?"
for want in "objective: the server's KV memory-time" "latencies consistent with the regime's steps" \
            "DP (work obj.)" "DP vs no split"; do
    echo "$kout" | grep -qF "$want" || fail "kv output lacks '$want'"
done
$py - "$tmp/k.json" <<'PY' || fail "kv JSON check"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["objective"] == "kv", b
pl = {p["plan"]: p for p in b["plans"]}
none, dp = pl["no split"], pl["DP"]
# at no split the regime runs at the profile's batch (the calibration; -1: the profile's step
# fit has no fixed part, so no batch is implied) and is its own consistent-steps point
assert none["kv_vs_none"] == 1.0, none
if none["implied_batch"] >= 0:
    assert abs(none["implied_batch"] - b["slowdown"]) < 1e-6, none
    for k in ("consistent_steps", "consistent_steps_half_wait"):
        assert abs(none[k]["kv_vs_none"] - 1) < 1e-9 and abs(none[k]["batch"] - b["slowdown"]) < 1e-6, none
for p in b["plans"]:
    assert p["sla_attainment"] == 1.0 and p["fits_kv"], p
    want = none["server_cpu_s_per_request"] * p["kv_byte_s"] / none["kv_byte_s"]
    assert abs(p["kv_bound_cpu_s_per_request"] - want) <= 1e-6 * want, p
for g in ("no split", "greedy (ratio)", "greedy (arrival)"):
    if pl[g]["fits_devices"]:
        assert dp["kv_byte_s"] <= pl[g]["kv_byte_s"] * (1 + 1e-9), (g, pl[g], dp)
assert dp["kv_byte_s"] <= b["dp_work_objective"]["kv_byte_s"] * (1 + 1e-9), b
PY

# Bad input and misuse.
expect() { # CODE MESSAGE CMD...
    local code=$1 msg=$2; shift 2
    local o; o=$("$@" 2>&1); local rc=$?
    [ $rc -eq "$code" ] || fail "'$*' exited $rc, expected $code: $o"
    echo "$o" | grep -qF -- "$msg" || fail "'$*' message lacks '$msg': $o"
}
expect 2 "--model is required" "$weft" split profile --threads 1
expect 2 "expects HOST:PORT" "$weft" split profile --model "$tmp/m.gguf" --link nohost
expect 2 "go together" "$weft" split profile --model "$tmp/m.gguf" --link-bw 1000
expect 2 "unknown option" "$weft" split profile --model "$tmp/m.gguf" --bogus
expect 2 "unknown subcommand" "$weft" split frobnicate
expect 2 "expects an integer" "$weft" split profile --model "$tmp/m.gguf" --batch 0
expect 1 "cannot connect" "$weft" split profile --model "$tmp/m.gguf" --reps 1 --prompt-tokens 4 --link 127.0.0.1:1
expect 2 "are required" "$weft" bench split --server-profile "$tmp/s.json"
expect 2 "expects f32 or f16" "$weft" bench split --server-profile "$tmp/s.json" --client-profile "$tmp/c.json" --hidden f8
expect 2 "expects work or kv" "$weft" bench split --server-profile "$tmp/s.json" --client-profile "$tmp/c.json" --objective speed
expect 2 "not a constraint under --objective kv" "$weft" bench split --server-profile "$tmp/s.json" --client-profile "$tmp/c.json" --objective kv --sweep
printf 'not json' >"$tmp/bad.json"
expect 1 "not a profile" "$weft" bench split --server-profile "$tmp/bad.json" --client-profile "$tmp/c.json"
printf '{"n_layers": 3, "cost": {"layer_prefill_s": 1, "layer_decode_s": -2, "head_prefill_s": 0, "head_decode_s": 0}}' >"$tmp/neg.json"
expect 1 "must be >= 0" "$weft" bench split --server-profile "$tmp/neg.json" --client-profile "$tmp/c.json"
$py -c "
import json; p=json.load(open('$tmp/c.json')); p['dim']=64; json.dump(p, open('$tmp/other.json','w'))"
expect 1 "different models" "$weft" bench split --server-profile "$tmp/s.json" --client-profile "$tmp/other.json"

if [ -z "$shared" ] || [ ! -r "$shared/models/stories260K.gguf" ]; then
    echo "SKIP (loud): ../shared is absent — the real-model profile was not checked"
    exit 77
fi
"$weft" split profile --model "$shared/models/stories260K.gguf" --threads 1 --reps 2 --out "$tmp/st.json" \
    2>/dev/null || fail "stories260K profile exited $?"
$py -c "
import json; p=json.load(open('$tmp/st.json')); c=p['cost']; assert p['n_layers']==5 and p['dim']==64 and c['head_decode_s']+5*c['layer_decode_s']>0, p" \
    || fail "stories260K profile"
echo "PASS"

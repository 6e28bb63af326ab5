#!/usr/bin/env bash
# test_tp.sh — tensor parallelism under `mpirun -np 2` against --tp 1, on synthesized models
# (no ../shared needed): test-gqa (8 heads, 2 KV heads, FFN 160: everything divides by 2) and
# test-odd (3 heads, 3 KV heads: split 2 + 1), in F32 and Q8_0 (whose FFN of 5 blocks splits
# 3 + 2). Checks: greedy tokens identical and every logits row within 1e-4 relative (max |diff|
# / max |logit|) through chunked prefill and decode; `weft run --temp 0` text identical; the
# fusion engine with requests joining and leaving (dense layout with compaction moves, paged)
# gives every request the same tokens; `weft bench engine --tp 2` runs; refusals with a clear
# message (too few KV heads for 3 ranks, a different model or a missing file on rank 1, --tp 2
# without mpirun); a stopped rank is detected by the timeout (/health 503, job aborted) and a
# killed rank ends the job (no hang).
# usage: tests/test_tp.sh BUILD_DIR [SHARED_DIR]
set -u
build=$1
src=$(cd "$(dirname "$0")/.." && pwd)
weft="$build/weft"
check="$build/tp_check"
tmp=$(mktemp -d)
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill -CONT $(pgrep -P "$srv_pid" 2>/dev/null) 2>/dev/null
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

if ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP: mpirun not found (scripts/setup.sh installs openmpi-bin)"
    exit 77
fi
if "$weft" run --tp 2 --model /nonexistent 2>&1 | grep -q "built without"; then
    echo "SKIP: weft was built without MPI (scripts/setup.sh installs libopenmpi-dev)"
    exit 77
fi
# Root needs OpenMPI's explicit consent; 2 ranks on a 2-core machine may oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
# Sanitizer build: OpenMPI keeps allocations past MPI_Finalize in plug-ins (PMIx, hwloc,
# transports) it has unloaded by exit, so LeakSanitizer reports them with "<unknown module>"
# frames that no suppression can name. Leak checking is therefore off in the MPI ranks only;
# ASan (memory errors) and UBSan stay on, and weft's own allocations are leak-checked by the
# other sanitizer tests (test_tp_plan covers sharding; test_engine/test_forward the rest).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
MPI2="mpirun -np 2 -x ASAN_OPTIONS"

for spec in test-gqa:f32 test-odd:f32 test-gqa:q8_0 test-odd:q8_0; do
    "$weft" model synth --preset "${spec%%:*}" --type "${spec##*:}" \
        --out "$tmp/${spec%%:*}-${spec##*:}.gguf" >/dev/null || fail "synth $spec"
done

# --- logits and greedy tokens ---
for m in test-gqa-f32 test-odd-f32 test-gqa-q8_0 test-odd-q8_0; do
    "$check" logits "$tmp/$m.gguf" 1 "$tmp/l1.f32" >"$tmp/t1" 2>"$tmp/e1" || fail "$m tp1: $(cat "$tmp/e1")"
    timeout 120 $MPI2 "$check" logits "$tmp/$m.gguf" 2 "$tmp/l2.f32" >"$tmp/t2" 2>"$tmp/e2" ||
        fail "$m tp2: $(cat "$tmp/e2")"
    cmp -s "$tmp/t1" "$tmp/t2" || fail "$m greedy tokens differ: tp1 $(cat "$tmp/t1") / tp2 $(cat "$tmp/t2")"
    grep -q "tp: 2 ranks, 10 forward passes" "$tmp/e2" || fail "$m: no tp statistics line: $(cat "$tmp/e2")"
    /usr/bin/python3 - "$tmp/l1.f32" "$tmp/l2.f32" "$m" <<'EOF' || fail "$m logits differ"
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype=np.float32).reshape(48, -1)
b = np.fromfile(sys.argv[2], dtype=np.float32).reshape(48, -1)
rel = (np.abs(a - b).max(axis=1) / np.abs(a).max(axis=1)).max()
print(f"ok: {sys.argv[3]}: 48 logits rows, max relative difference tp2 vs tp1 {rel:.2e}")
sys.exit(0 if np.isfinite(rel) and rel <= 1e-4 else 1)
EOF
    echo "ok: $m greedy tokens identical: $(cat "$tmp/t1")"
done

# --- weft run ---
"$weft" run --model "$tmp/test-odd-f32.gguf" --temp 0 -n 40 -t 1 -p "hello" >"$tmp/r1" 2>"$tmp/e1" ||
    fail "run tp1: $(cat "$tmp/e1")"
timeout 120 $MPI2 "$weft" run --tp 2 --model "$tmp/test-odd-f32.gguf" --temp 0 -n 40 -t 1 -p "hello" \
    >"$tmp/r2" 2>"$tmp/e2" || fail "run tp2: $(cat "$tmp/e2")"
cmp -s "$tmp/r1" "$tmp/r2" || fail "weft run text differs between --tp 1 and --tp 2"
[ "$(wc -c <"$tmp/r1")" -gt 10 ] || fail "weft run produced no text"
echo "ok: weft run --temp 0 -n 40: same text with --tp 2"

# --- the fusion engine: joins and leaves ---
for kv in dense paged; do
    "$check" engine "$tmp/test-gqa-f32.gguf" 1 $kv >"$tmp/g1" 2>"$tmp/e1" || fail "engine $kv tp1: $(cat "$tmp/e1")"
    timeout 120 $MPI2 "$check" engine "$tmp/test-gqa-f32.gguf" 2 $kv >"$tmp/g2" 2>"$tmp/e2" ||
        fail "engine $kv tp2: $(cat "$tmp/e2")"
    [ "$(grep -c '(done)' "$tmp/g1")" -eq 7 ] || fail "engine $kv: not all 7 requests finished"
    cmp -s "$tmp/g1" "$tmp/g2" || fail "engine $kv: tokens differ under --tp 2: $(diff "$tmp/g1" "$tmp/g2")"
    if [ $kv = dense ]; then
        moves=$(sed -n 's/.* \([0-9]*\) slot moves/\1/p' "$tmp/e2" | head -1)
        [ "${moves:-0}" -gt 0 ] || fail "engine dense: the workload made no compaction moves"
        echo "ok: engine dense (7 requests joining/leaving, $moves compaction moves): same tokens"
    else
        echo "ok: engine paged (7 requests joining/leaving): same tokens"
    fi
done

# --- weft bench engine --tp 2 ---
timeout 120 $MPI2 "$weft" bench engine --tp 2 --model "$tmp/test-gqa-q8_0.gguf" -t 1 -n 6 \
    --output-len 8 --gap-mean 0 --warmup 0 >"$tmp/b2" 2>"$tmp/e2" || fail "bench engine --tp 2: $(cat "$tmp/e2")"
grep -q "tensor parallel over 2 ranks" "$tmp/b2" "$tmp/e2" || fail "bench engine: no tensor-parallel note"
grep -q "6/6 finished" "$tmp/e2" || fail "bench engine: $(cat "$tmp/e2")"
echo "ok: weft bench engine --tp 2"

# --- refusals ---
expect_fail() { # MSG CMD...: CMD must fail (within the timeout) and print MSG
    local msg=$1; shift
    timeout 60 "$@" >"$tmp/o" 2>&1
    local rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "$*: exit $rc, want a refusal"
    grep -qF -- "$msg" "$tmp/o" || fail "$*: output lacks '$msg': $(cat "$tmp/o")"
    echo "ok: refused: $msg"
}
expect_fail "the model has 2 KV heads, fewer than the 3 ranks" \
    mpirun -np 3 "$weft" run --tp 3 --model "$tmp/test-gqa-f32.gguf" -n 4
expect_fail "rank 1 loaded a different model than rank 0" \
    mpirun -np 1 "$weft" run --tp 2 --model "$tmp/test-gqa-f32.gguf" -n 4 : \
    -np 1 "$weft" run --tp 2 --model "$tmp/test-gqa-q8_0.gguf" -n 4
expect_fail "rank 1 cannot take part: cannot open '$tmp/none.gguf'" \
    mpirun -np 1 "$weft" run --tp 2 --model "$tmp/test-gqa-f32.gguf" -n 4 : \
    -np 1 "$weft" run --tp 2 --model "$tmp/none.gguf" -n 4
expect_fail "--tp 2 but the MPI job has 1 rank" "$weft" run --tp 2 --model "$tmp/test-gqa-f32.gguf"

# --- a rank that hangs, a rank that dies (weft serve) ---
command -v curl >/dev/null || fail "curl is required"
rank1_pid() { # the weft process of rank 1 under mpirun $1
    local p
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && echo "$p"
    done
}
start_serve() {
    WEFT_TP_TIMEOUT_S=2 WEFT_TP_FAIL_GRACE_S=4 mpirun -np 2 -x ASAN_OPTIONS -x WEFT_TP_TIMEOUT_S \
        -x WEFT_TP_FAIL_GRACE_S "$weft" serve --tp 2 --model "$tmp/test-gqa-f32.gguf" --port 0 \
        --threads 1 >"$tmp/srv" 2>&1 &
    srv_pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/srv")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || fail "serve --tp 2 did not start: $(cat "$tmp/srv")"
    curl -sf "http://127.0.0.1:$port/health" | grep -q '"ok"' || fail "/health not ok at start"
    out=$(curl -sf "http://127.0.0.1:$port/v1/completions" -d '{"prompt":"a","max_tokens":5,"ignore_eos":true}') ||
        fail "completion under --tp 2 failed"
    echo "$out" | grep -q '"completion_tokens":5' || fail "completion: $out"
    r1=$(rank1_pid "$srv_pid")
    [ -n "$r1" ] || fail "cannot find rank 1's process"
}
wait_end() { # seconds: the mpirun job must end within them; sets job_rc
    local i
    for i in $(seq $(($1 * 10))); do
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$srv_pid" 2>/dev/null && fail "the job still runs $1 s after a rank failed: $(cat "$tmp/srv")"
    wait "$srv_pid"
    job_rc=$?
    srv_pid=
}

start_serve
kill -STOP "$r1"
curl -s -m 30 "http://127.0.0.1:$port/v1/completions" -d '{"prompt":"a","max_tokens":5}' >/dev/null &
curl_pid=$!
health=
for _ in $(seq 60); do
    health=$(curl -s -m 1 "http://127.0.0.1:$port/health")
    echo "$health" | grep -q '"failed"' && break
    sleep 0.1
done
echo "$health" | grep -q "no answer from the other ranks for 2 s" || fail "/health after a hung rank: $health"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://127.0.0.1:$port/health")
[ "$code" = 503 ] || fail "/health status $code after a hung rank, want 503"
kill -CONT "$r1" 2>/dev/null
wait_end 20
wait "$curl_pid" 2>/dev/null
[ "$job_rc" -ne 0 ] || fail "the job exited 0 after a hung rank"
grep -q "weft: tensor parallel, rank 0 of 2: no answer from the other ranks" "$tmp/srv" ||
    fail "rank 0 did not say why: $(cat "$tmp/srv")"
echo "ok: a stopped rank: /health 503 with the reason, job aborted (exit $job_rc)"

start_serve
kill -KILL "$r1"
wait_end 20
[ "$job_rc" -ne 0 ] || fail "the job exited 0 after a killed rank"
grep -q "rank 1 .*exited on signal 9" "$tmp/srv" || fail "no message naming the dead rank: $(cat "$tmp/srv")"
echo "ok: a killed rank ends the job (exit $job_rc): $(grep -o 'rank 1 .*exited on signal 9[^.]*' "$tmp/srv" | head -1)"
echo "all tensor-parallel tests passed"

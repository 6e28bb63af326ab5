#!/usr/bin/env bash
# test_run_cli.sh — end-to-end check of `weft run`: usage and argument errors exit 2 naming the
# option, unreadable or corrupt models exit 1 with the loader's message, stdout carries only the
# text and stderr the speed line, --stop cuts the text exactly, the KV cache types (--kv-type)
# generate, and a synthesized model samples reproducibly with every sampling option set. The
# stories260K checks skip loudly without ../shared.
# usage: tests/test_run_cli.sh BUILD_DIR SHARED_DIR
set -u
build=$1
shared=${2:-}
weft="$build/weft"
models=$shared/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# expect RC WANT_IN_STDERR ARGS...: runs weft run ARGS, checks exit code and stderr text.
expect() {
    local want_rc=$1 want_msg=$2; shift 2
    "$weft" run "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc -eq "$want_rc" ] || fail "weft run $*: exit $rc, want $want_rc ($(cat "$tmp/err"))"
    grep -qF -- "$want_msg" "$tmp/err" || fail "weft run $*: stderr lacks '$want_msg': $(cat "$tmp/err")"
    echo "ok: weft run $* -> exit $rc"
}

# --- usage and argument errors (no model needed) ---
"$weft" run --help >"$tmp/out" 2>"$tmp/err" || fail "--help should exit 0"
grep -q "usage: weft run" "$tmp/out" || fail "--help should print usage on stdout"
"$weft" run -h >/dev/null 2>&1 || fail "-h should exit 0"
expect 2 "--model is required"
expect 2 "--model is required" --prompt "hi"
expect 2 "-n expects an integer" -m x.gguf -n abc
expect 2 "-n expects an integer" -m x.gguf -n -3
expect 2 "--temp expects a number" -m x.gguf --temp -1
expect 2 "--temp expects a number" -m x.gguf --temp nan
expect 2 "--top-p expects a number" -m x.gguf --top-p 2
expect 2 "--min-p expects a number" -m x.gguf --min-p 1.5
expect 2 "--top-k expects an integer" -m x.gguf --top-k 4x
expect 2 "--seed expects a non-negative integer" -m x.gguf --seed -1
expect 2 "--ctx expects an integer" -m x.gguf --ctx 0
expect 2 "--prompt needs a value" -m x.gguf --prompt
expect 2 "unknown option '--bogus'" -m x.gguf --bogus
expect 2 "--kv-type expects f32, f16 or q8_0, got 'f8'" -m x.gguf --kv-type f8
[ ! -s "$tmp/out" ] || fail "argument errors must print nothing on stdout"

# --- unreadable and corrupt models ---
expect 1 "cannot open" -m "$tmp/missing.gguf"
printf 'hello world, not a model at all' >"$tmp/junk.bin"
expect 1 "llama2.c: " -m "$tmp/junk.bin" -z "$tmp/missing-tok.bin"

# --- a synthesized model: all sampling options, reproducible ---
"$weft" model synth --preset test-gqa --out "$tmp/synth.gguf" >/dev/null || fail "synth exited $?"
head -c 100 "$tmp/synth.gguf" >"$tmp/corrupt.gguf"
expect 1 "gguf: " -m "$tmp/corrupt.gguf"
sample=(--temp 0.7 --top-k 20 --top-p 0.9 --min-p 0.05 --repeat-penalty 1.1 --seed 3 -n 48 -p "hello")
"$weft" run -m "$tmp/synth.gguf" "${sample[@]}" >"$tmp/s1" 2>"$tmp/s1.err" || fail "synth run 1 exited $?: $(cat "$tmp/s1.err")"
"$weft" run -m "$tmp/synth.gguf" "${sample[@]}" >"$tmp/s2" 2>"$tmp/s2.err" || fail "synth run 2 exited $?"
cmp -s "$tmp/s1" "$tmp/s2" || fail "synth: same seed gave different output"
grep -q "generation: " "$tmp/s1.err" || fail "synth: no speed line on stderr"
[ "$(head -c 5 "$tmp/s1")" = "hello" ] || fail "synth: stdout should start with the echoed prompt"
sample[11]=4 # --seed 4
[ "${sample[10]}" = "--seed" ] || fail "test bug: sample[] layout changed"
"$weft" run -m "$tmp/synth.gguf" "${sample[@]}" >"$tmp/s3" 2>/dev/null || fail "synth run 3 exited $?"
cmp -s "$tmp/s1" "$tmp/s3" && fail "synth: seeds 3 and 4 gave identical output"
echo "ok: synth model samples reproducibly ($(wc -c <"$tmp/s1") bytes)"

# --- the trained stories260K model ---
if [ -z "$shared" ] || [ ! -f "$models/stories260K.gguf" ]; then
    echo "SKIP (loud): $models/stories260K.gguf not found — ../shared is absent, stories260K checks skipped"
    echo "PASS (partial)"
    exit 0
fi
gguf=$models/stories260K.gguf
greedy=$models/stories260K.greedy200.txt

head -c 100 "$gguf" >"$tmp/trunc.gguf"
expect 1 "gguf: " -m "$tmp/trunc.gguf"

# stdout: only the text (prompt echo + continuation + newline); stderr: the speed line.
"$weft" run -m "$gguf" --temp 0 -n 30 -p "Once upon a time" >"$tmp/out" 2>"$tmp/err" \
    || fail "greedy with prompt exited $?"
n=$(($(wc -c <"$tmp/out") - 1))
[ "$(tail -c 1 "$tmp/out" | od -An -c | tr -d ' ')" = '\n' ] || fail "stdout should end in a newline"
cmp -s <(head -c "$n" "$tmp/out") <(head -c "$n" "$greedy") \
    || fail "stdout is not a prefix of the greedy text: $(cat "$tmp/out")"
grep -q "tok/s" "$tmp/out" && fail "the speed line leaked into stdout"
grep -Eq "prompt: 5 tokens in [0-9.]+ s \([0-9.]+ tok/s\) \| generation: 30 tokens in [0-9.]+ s \([0-9.]+ tok/s\)" "$tmp/err" \
    || fail "stderr lacks the speed line: $(cat "$tmp/err")"
echo "ok: stdout holds the text only, stderr the speed line"

# --no-echo: the continuation alone.
"$weft" run -m "$gguf" --temp 0 -n 30 -p "Once upon a time" --no-echo >"$tmp/out2" 2>/dev/null \
    || fail "--no-echo exited $?"
cmp -s <(printf 'Once upon a time'; cat "$tmp/out2") "$tmp/out" || fail "--no-echo output differs"

# --stop: exactly the greedy text before the first occurrence (then the final newline).
for stop in "park" "tle gi" "Lily's mom"; do
    "$weft" run -m "$gguf" --temp 0 -n 200 --stop "$stop" >"$tmp/out" 2>"$tmp/err" \
        || fail "--stop '$stop' exited $?"
    # (to a file: command substitution would drop a trailing newline of the prefix)
    awk -v s="$stop" 'BEGIN{RS="^$"} {i=index($0,s); printf "%s\n", substr($0,1,i-1)}' "$greedy" \
        >"$tmp/want"
    cmp -s "$tmp/out" "$tmp/want" \
        || fail "--stop '$stop': got '$(cat "$tmp/out")', want '$(cat "$tmp/want")'"
    grep -q "stop: stop_string" "$tmp/err" || fail "--stop '$stop': stderr should say stop_string"
done
# two --stop strings: the earlier occurrence wins
"$weft" run -m "$gguf" --temp 0 -n 200 --stop "red ball" --stop "park" >"$tmp/out" 2>/dev/null
cmp -s "$tmp/out" <(printf 'Once upon a time, there was a little girl named Lily. She loved to play outside in the \n') \
    || fail "two --stop strings: got '$(cat "$tmp/out")'"
echo "ok: --stop"

# --kv-type: an F16 cache reproduces the 200-token greedy text exactly; a Q8_0 cache (int8
# rows, one scale each) generates the full length and starts with the same words (its logits
# are within the tolerance test_kv_q8 asserts, so a later greedy step may take another branch).
"$weft" run -m "$gguf" --temp 0 -n 200 --kv-type f16 >"$tmp/out" 2>"$tmp/err" || fail "--kv-type f16 exited $?"
cmp -s "$tmp/out" "$greedy" || fail "--kv-type f16: the greedy text differs: $(cat "$tmp/out")"
"$weft" run -m "$gguf" --temp 0 -n 200 --kv-type q8_0 >"$tmp/out" 2>"$tmp/err" || fail "--kv-type q8_0 exited $?"
grep -q "generation: 200 tokens" "$tmp/err" || fail "--kv-type q8_0: $(cat "$tmp/err")"
cmp -s <(head -c 60 "$tmp/out") <(head -c 60 "$greedy") || fail "--kv-type q8_0: the text starts differently: $(cat "$tmp/out")"
echo "ok: --kv-type f16 and q8_0"

# A prompt that does not fit the context: exit 1, a clear message, nothing on stdout.
"$weft" run -m "$gguf" -c 4 -p "Once upon a time, there was a little girl" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] || fail "an over-long prompt should exit 1"
grep -q "prompt is .* tokens, the context holds 4" "$tmp/err" || fail "over-long prompt message: $(cat "$tmp/err")"
[ ! -s "$tmp/out" ] || fail "an over-long prompt should print nothing on stdout: $(cat "$tmp/out")"
echo "ok: over-long prompt refused"

# Context exhaustion is reported as the stop reason.
"$weft" run -m "$gguf" --temp 0 -c 16 -n 100 -p "Once upon a time" >/dev/null 2>"$tmp/err" \
    || fail "-c 16 exited $?"
grep -q "generation: 11 tokens.*stop: context" "$tmp/err" || fail "context stop: $(cat "$tmp/err")"

# -n 0: only the prompt and the newline.
"$weft" run -m "$gguf" -n 0 -p "Once upon a time" >"$tmp/out" 2>/dev/null || fail "-n 0 exited $?"
cmp -s "$tmp/out" <(printf 'Once upon a time\n') || fail "-n 0: got '$(cat "$tmp/out")'"

# llama2.c checkpoint without --tokenizer and without tokenizer.bin beside it: exit 1.
cp "$models/stories260K.bin" "$tmp/lonely.bin"
expect 1 "needs a tokenizer" -m "$tmp/lonely.bin" -n 5
# ... with tokenizer.bin beside it, found by default.
cp "$models/tok512.bin" "$tmp/tokenizer.bin"
"$weft" run -m "$tmp/lonely.bin" --temp 0 -n 200 >"$tmp/out" 2>/dev/null || fail "default tokenizer.bin exited $?"
cmp -s "$tmp/out" "$greedy" || fail "llama2.c with the default tokenizer.bin differs from the greedy text"
echo "ok: llama2.c checkpoint with tokenizer.bin beside it"
echo "PASS"

#!/usr/bin/env bash
# test_model_cli.sh — end-to-end check of `weft model synth` and `weft model inspect`: a
# synthesized model inspects cleanly, bad files exit 1 with their message, misuse exits 2.
# usage: tests/test_model_cli.sh BUILD_DIR SHARED_DIR
set -u
build=$1
shared=${2:-}
weft="$build/weft"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

out=$("$weft" model synth --preset test-gqa --type q4_0 --layers 2 --ctx 128 --seed 9 --untied \
    --out "$tmp/m.gguf") || fail "synth exited $?"
echo "$out"
echo "$out" | grep -q "parameters" || fail "synth did not print its parameter count"
ins=$("$weft" model inspect "$tmp/m.gguf") || fail "inspect exited $?"
for want in "GGUF v3" "architecture:  llama" "context_length                     128" \
    "block_count                        2" "blk.1.ffn_down.weight" "output.weight" "Q4_0" \
    "tokenizer.ggml.tokens" "str[512]" "totals:"; do
    echo "$ins" | grep -qF "$want" || fail "inspect output lacks '$want'"
done

# Truncated GGUF: exit 1 with the reader's message.
head -c 3000 "$tmp/m.gguf" >"$tmp/trunc.gguf"
msg=$("$weft" model inspect "$tmp/trunc.gguf" 2>&1)
[ $? -eq 1 ] || fail "truncated file should exit 1"
echo "$msg" | grep -q "gguf: " || fail "truncated file message: $msg"

printf 'hello world' >"$tmp/x.bin"
msg=$("$weft" model inspect "$tmp/x.bin" 2>&1)
[ $? -eq 1 ] || fail "non-GGUF should exit 1"
echo "$msg" | grep -q "not a GGUF file" || fail "non-GGUF message: $msg"

"$weft" model synth --preset nope --out "$tmp/n.gguf" >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown preset should exit 2"
"$weft" model synth --preset test-gqa >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --out should exit 2"
"$weft" model synth --preset test-gqa --out "$tmp/n.gguf" --type q5_1 >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad --type should exit 2"
"$weft" model synth --preset test-gqa --out "$tmp/n.gguf" --layers abc >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad --layers should exit 2"
"$weft" model inspect >/dev/null 2>&1
[ $? -eq 2 ] || fail "inspect without FILE should exit 2"

if [ -n "$shared" ] && [ -f "$shared/models/stories260K.gguf" ]; then
    ins=$("$weft" model inspect "$shared/models/stories260K.gguf") || fail "inspect stories260K"
    echo "$ins" | grep -qF "tensors (48)" || fail "stories260K should list 48 tensors"
    "$weft" model synth --preset test-gqa --vocab-from "$shared/models/tok512.bin" \
        --out "$tmp/v.gguf" >/dev/null || fail "synth --vocab-from tok512.bin"
else
    echo "SKIP (loud): shared models absent, stories260K checks skipped"
fi
echo "PASS"

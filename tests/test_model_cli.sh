#!/usr/bin/env bash
# test_model_cli.sh — end-to-end check of `weft model synth` and `weft model inspect`: a
# synthesized model inspects cleanly, llama2.c checkpoints (from ../shared) inspect through
# model_load, bad files exit 1 with their message, misuse exits 2. Exits 77 (skip, loudly)
# after the synthetic checks when ../shared is absent.
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

# Neither GGUF nor llama2.c: exit 1 with the llama2.c loader's message.
printf 'hello world' >"$tmp/x.bin"
msg=$("$weft" model inspect "$tmp/x.bin" 2>&1)
[ $? -eq 1 ] || fail "non-GGUF should exit 1"
echo "$msg" | grep -q "not GGUF, and not a loadable llama2.c checkpoint" || fail "non-GGUF message: $msg"
echo "$msg" | grep -q "is 11 bytes, too small for a header" || fail "non-GGUF message: $msg"
msg=$("$weft" model inspect "$tmp/nonexistent.bin" 2>&1)
[ $? -eq 1 ] || fail "missing file should exit 1"
echo "$msg" | grep -q "cannot open" || fail "missing file message: $msg"

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
"$weft" model inspect "$tmp/m.gguf" "$tmp/m.gguf" >/dev/null 2>&1
[ $? -eq 2 ] || fail "inspect with two FILEs should exit 2"
"$weft" model inspect "$tmp/m.gguf" --tokenizer >/dev/null 2>&1
[ $? -eq 2 ] || fail "inspect --tokenizer without a value should exit 2"
"$weft" model inspect "$tmp/m.gguf" --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "inspect with an unknown option should exit 2"
# --tokenizer is ignored for GGUF: the output is unchanged.
a=$("$weft" model inspect "$tmp/m.gguf") && b=$("$weft" model inspect "$tmp/m.gguf" --tokenizer /x)
[ "$a" = "$b" ] || fail "--tokenizer changed the GGUF inspect output"

models=$shared/models
if [ -z "$shared" ] || [ ! -f "$models/stories260K.gguf" ] || [ ! -f "$models/stories260K.bin" ]; then
    echo "SKIP (loud): $models/stories260K.* not found — ../shared is absent, the GGUF/llama2.c"
    echo "checks on real models are skipped (the synthetic-model checks above passed)"
    exit 77
fi
ins=$("$weft" model inspect "$models/stories260K.gguf") || fail "inspect stories260K"
echo "$ins" | grep -qF "tensors (48)" || fail "stories260K should list 48 tensors"
"$weft" model synth --preset test-gqa --vocab-from "$models/tok512.bin" \
    --out "$tmp/v.gguf" >/dev/null || fail "synth --vocab-from tok512.bin"

# llama2.c legacy checkpoint with an explicit tokenizer.
ins=$("$weft" model inspect "$models/stories260K.bin" --tokenizer "$models/tok512.bin") ||
    fail "inspect stories260K.bin exited $?"
echo "$ins"
for want in "(1056540 bytes)" "format:        llama2.c legacy (28-byte header), F32" \
    "512 tokens, bos 1, eos 2" "dim                                64" \
    "hidden_dim                         172" "n_layers                           5" \
    "n_heads                            8" "n_kv_heads                         4" \
    "vocab_size                         512" "seq_len                            512" \
    "classifier:    shared with the token embedding" \
    "totals:        260032 parameters (0.26M), 1040128 weight bytes"; do
    echo "$ins" | grep -qF "$want" || fail "llama2.c inspect output lacks '$want'"
done
ins=$("$weft" model inspect --tokenizer "$models/aidreams260K.tok512.bin" "$models/aidreams260K.bin") ||
    fail "inspect aidreams260K.bin exited $?"
for want in "n_layers                           4" "n_heads                            4" \
    "n_kv_heads                         4" "seq_len                            128"; do
    echo "$ins" | grep -qF "$want" || fail "aidreams260K inspect output lacks '$want'"
done

# tokenizer.bin beside the model is found without --tokenizer; without it, exit 1.
mkdir "$tmp/l2c"
cp "$models/stories260K.bin" "$tmp/l2c/model.bin"
msg=$("$weft" model inspect "$tmp/l2c/model.bin" 2>&1)
[ $? -eq 1 ] || fail "llama2.c without a tokenizer should exit 1"
echo "$msg" | grep -qF "needs a tokenizer (--tokenizer tokenizer.bin)" || fail "no-tokenizer message: $msg"
cp "$models/tok512.bin" "$tmp/l2c/tokenizer.bin"
ins=$("$weft" model inspect "$tmp/l2c/model.bin") || fail "tokenizer.bin beside the model not used"
echo "$ins" | grep -qF "tokenizer:     $tmp/l2c/tokenizer.bin (512 tokens" || fail "beside: $ins"

# Unshared classifier: vocab negated in the header, a classifier appended.
{ head -c 20 "$models/stories260K.bin"; printf '\000\376\377\377'; tail -c +25 "$models/stories260K.bin"
  head -c $((28 + 512 * 64 * 4)) "$models/stories260K.bin" | tail -c $((512 * 64 * 4)); } >"$tmp/l2c/unshared.bin"
ins=$("$weft" model inspect "$tmp/l2c/unshared.bin") || fail "inspect unshared exited $?"
echo "$ins" | grep -qF "classifier:    separate" || fail "unshared classifier not reported: $ins"
echo "$ins" | grep -qF "totals:        292800 parameters" || fail "unshared params: $ins"

# Broken llama2.c files: exit 1 with the loader's message.
head -c 500000 "$models/stories260K.bin" >"$tmp/l2c/cut.bin"
msg=$("$weft" model inspect "$tmp/l2c/cut.bin" 2>&1)
[ $? -eq 1 ] || fail "truncated llama2.c should exit 1"
echo "$msg" | grep -qF "is truncated: 500000 bytes" || fail "truncated llama2.c message: $msg"
{ cat "$models/stories260K.bin"; printf 'junk'; } >"$tmp/l2c/junk.bin"
msg=$("$weft" model inspect "$tmp/l2c/junk.bin" 2>&1)
[ $? -eq 1 ] || fail "llama2.c with trailing bytes should exit 1"
echo "$msg" | grep -qF "has 4 trailing bytes" || fail "trailing bytes message: $msg"
head -c 3000 "$models/tok512.bin" >"$tmp/l2c/tok-cut.bin"
msg=$("$weft" model inspect "$models/stories260K.bin" --tokenizer "$tmp/l2c/tok-cut.bin" 2>&1)
[ $? -eq 1 ] || fail "truncated tokenizer should exit 1"
echo "$msg" | grep -qF "truncated" || fail "truncated tokenizer message: $msg"
echo "PASS"

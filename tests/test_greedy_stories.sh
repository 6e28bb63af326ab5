#!/usr/bin/env bash
# End-to-end: `weft run` with greedy decoding from BOS for 200 steps must print exactly
# ../shared/models/stories260K.greedy200.txt, from the GGUF and from the llama2.c checkpoint.
set -euo pipefail
build=$1 shared=$2
models=$shared/models
if [ ! -f "$models/stories260K.gguf" ]; then
  echo "SKIP (loud): $models/stories260K.gguf not found — ../shared is absent, test skipped"
  exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail=0
check() {
  local what=$1; shift
  if ! "$build/weft" run "$@" --temp 0 -n 200 >"$out" 2>/dev/null; then
    echo "FAIL: $what: weft run exited non-zero"; fail=1; return
  fi
  if cmp -s "$out" "$models/stories260K.greedy200.txt"; then
    echo "ok: $what reproduces stories260K.greedy200.txt"
  else
    echo "FAIL: $what differs from stories260K.greedy200.txt:"; diff "$out" "$models/stories260K.greedy200.txt" | head -20; fail=1
  fi
}
check "GGUF" --model "$models/stories260K.gguf"
check "llama2.c .bin" --model "$models/stories260K.bin" --tokenizer "$models/tok512.bin"
# single thread and forced scalar kernels must give the same text
check "GGUF, 1 thread" --model "$models/stories260K.gguf" --threads 1
WEFT_ISA=scalar check "GGUF, scalar ISA" --model "$models/stories260K.gguf"
exit $fail

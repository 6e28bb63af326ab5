#!/usr/bin/env bash
# Reference test: weft's logits (prefill of 20 tokens, then 32 single-token decode steps through
# a paged KV cache) must match an independent numpy implementation to 1e-4 relative error on a
# synthetic F32 model with several layers and grouped-query attention.
set -euo pipefail
build=$1
py=/usr/bin/python3
if ! $py -c 'import numpy' 2>/dev/null; then
  echo "FAIL: python3-numpy is missing (run scripts/setup.sh)"; exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$build/weft" model synth --preset test-gqa --type f32 --seed 7 --out "$dir/m.gguf" >/dev/null
# 52 deterministic pseudo-random token ids in [3, 512)
tokens=$($py -c 'import random; r=random.Random(5); print(" ".join(str(r.randrange(3,512)) for _ in range(52)))')
"$build/ref_logits" "$dir/m.gguf" 20 "$dir/logits.f32" $tokens
$py "$(dirname "$0")/ref/llama_ref.py" "$dir/m.gguf" "$dir/logits.f32" $tokens

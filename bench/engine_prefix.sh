#!/usr/bin/env bash
# engine_prefix.sh — prefix sharing in the paged KV cache: N requests that all start with the same
# 256-token system prompt (then 32 tokens of their own), served with and without sharing.
# Measures the prompt tokens actually computed (prefill work), the tokens served from shared
# blocks, the work saved, and the difference in time to first token.
# Reproduce: make build && bash bench/engine_prefix.sh        (full; --quick for a smoke test)
source "$(dirname "$0")/engine_lib.sh"
quick=0; [ "${1:-}" = "--quick" ] && quick=1
if [ $quick = 1 ]; then
    name=engine_prefix.quick; n=4; prefix=64
else
    name=engine_prefix; n=24; prefix=256
fi
csv=$results/$name.csv
rm -f "$csv"
synth_model tiny110m q8_0 "$scratch/model.gguf"
common=(--model "$scratch/model.gguf" --mode fused --kv paged -n $n --system-prefix $prefix
        --prompt-len 32 --output-len 16 --gap-mean 0.25 --seed 3 --csv-append "$csv" -q)
"$WEFT" bench engine "${common[@]}" --label "no sharing" >/dev/null
"$WEFT" bench engine "${common[@]}" --prefix-sharing --label "prefix sharing" >/dev/null
md=$results/$name.md
{
    echo "# engine_prefix — prefix sharing of a common system prompt (paged KV cache)"
    echo
    machine_line
    load_line
    echo
    echo "Workload: tiny110m synth Q8_0 (Llama-2 vocabulary), fused mode, $n requests, each a shared $prefix-token system"
    echo "prompt + 32 tokens of its own, 16 output tokens, Poisson arrivals with mean gap 0.25 s (seed 3), 16-token blocks."
    echo
    echo "| run | prompt tokens | prefill tokens computed | served from shared blocks | prefill saved | TTFT mean ms | TTFT p50 ms | TTFT p99 ms | e2e p50 s | out tok/s |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label prompt_tokens tokens_prefilled prefix_hit_tokens ttft_mean_ms ttft_p50_ms ttft_p99_ms e2e_p50_s out_tok_s |
        sed 's/^no sharing/no_sharing/; s/^prefix sharing/prefix_sharing/' |
        awk '{ printf "| %s | %s | %s | %s | %.1f%% | %.1f | %.1f | %.1f | %.3f | %.1f |\n", $1, $2, $3, $4, 100 * (1 - $3 / $2), $5, $6, $7, $8, $9; t[NR] = $5 }
             END { if (NR == 2 && t[2] > 0) printf "\nMean TTFT without / with sharing: **%.2fx** (%.1f ms less).\n", t[1] / t[2], t[1] - t[2] }'
    echo
    echo "Reproduce: \`make build && bash bench/engine_prefix.sh$([ $quick = 1 ] && echo ' --quick')\`"
} >"$md"
cat "$md"

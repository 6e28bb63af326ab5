#!/usr/bin/env bash
# engine_kv.sh — the two KV-cache layouts under the same load and the same cache memory:
# dense (Flover: one max_seq_len slot per sequence, compacted by shuffling slots after
# sequences leave) against paged (vLLM: 16-token blocks). Measures throughput, latency, the
# fraction of reserved cache rows that hold live tokens (mean over steps), and the compaction
# work (slots moved, bytes copied).
# Reproduce: make build && bash bench/engine_kv.sh        (full; --quick for a smoke test)
source "$(dirname "$0")/engine_lib.sh"
quick=0; [ "${1:-}" = "--quick" ] && quick=1
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
[ -r "$pairs" ] || { echo "SKIP (loud): $pairs not found — ../shared is absent"; exit 0; }
if [ $quick = 1 ]; then
    name=engine_kv.quick; n=8; max_out=16
else
    name=engine_kv; n=48; max_out=512
fi
# Same lengths as engine_mixed: 1024-token context, prompts cut to 128, outputs capped at 512,
# so sequences are at most 640 tokens. 5120 token rows = 8 dense slots of 640 tokens; paged fits
# as many sequences as their actual lengths allow (up to --max-running 32).
max_seq=640
kv_tokens=5120
csv=$results/$name.csv
rm -f "$csv"
synth_model tiny15m f32 "$scratch/model.gguf" --ctx 1024
"$WEFT" bench engine --model "$scratch/model.gguf" --mode fused --kv dense,paged -n $n --rate 8 \
    --lengths-from "$pairs" --prompts-from "$pairs" --max-output $max_out --max-prompt 128 \
    --max-seq-len $max_seq --kv-tokens $kv_tokens --max-running 32 --seed 2 --label "same-memory" \
    --csv-append "$csv" -q >/dev/null
"$WEFT" bench engine --model "$scratch/model.gguf" --mode fused --kv dense,paged -n $n --rate 8 \
    --lengths-from "$pairs" --prompts-from "$pairs" --max-output $max_out --max-prompt 128 \
    --max-seq-len $max_seq --max-running 32 --seed 2 --label "ample-memory" --csv-append "$csv" -q >/dev/null
md=$results/$name.md
{
    echo "# engine_kv — dense slots with compaction vs paged blocks"
    echo
    machine_line
    load_line
    echo
    echo "Workload: tiny15m synth F32 (Llama-2 vocabulary), fused mode, $n requests at 8 req/s (Poisson, seed 2), prompts"
    echo "and output lengths from alpaca_cleaned_1000.jsonl (prompts cut to 128, outputs capped at $max_out), max_seq_len $max_seq."
    echo "same-memory: both layouts get $kv_tokens cache rows (dense: 8 slots); ample-memory: enough rows for 32 dense slots."
    echo "KV live % = mean over steps of live token rows / reserved rows (slots or blocks held by live sequences)."
    echo
    echo "| memory | kv | KV rows | out tok/s | e2e p50 s | e2e p99 s | TTFT p99 ms | KV live % | slots moved | MB moved | preempted | compaction s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label kv kv_capacity_tokens out_tok_s e2e_p50_s e2e_p99_s ttft_p99_ms kv_live_frac slot_moves bytes_moved preempted t_compact_s |
        awk '{ printf "| %s | %s | %s | %.1f | %.2f | %.2f | %.0f | **%.1f** | %s | %.1f | %s | %.3f |\n", $1, $2, $3, $4, $5, $6, $7, 100 * $8, $9, $10 / 1e6, $11, $12 }'
    echo
    echo "Reproduce: \`make build && bash bench/engine_kv.sh$([ $quick = 1 ] && echo ' --quick')\`"
} >"$md"
cat "$md"

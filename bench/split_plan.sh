#!/usr/bin/env bash
# split_plan.sh — the split planner on the documented mix (docs/split.md, "Benchmark"), from
# costs measured on this machine: a Llama-2-7B-shaped model (synth, Q8_0, 2 layers measured; the
# plan assumes the full 32 layers) is profiled as the server (2 threads, fused decode batch of 8)
# and as the laptop client (1 thread, batch 1); phones are that client x4. The mix (docs/split.md,
# "Benchmark"): 8 client devices (laptops/phones x good/poor links), each running its user's
# quick, chat and document requests in the memory it gives to the model. Reports server work per
# request and per output token for no split, the greedy baselines and the DP, at equal SLA
# attainment, a sweep over the server's KV headroom, and variants of the mix.
# The server profile is timed at batch 8 and batch 1 (the step model: per layer, a decode step
# of b sequences costs fixed + marginal x b; docs/split.md "Server work: the fused step").
# Reproduce: make build && bash bench/quiet.sh bash bench/split_plan.sh   (--quick: a smoke run)
source "$(dirname "$0")/engine_lib.sh"
bench_args "$@"
if [ $quick = 1 ]; then name=split_plan.quick; reps=2; else name=split_plan; reps=7; fi
sprof=bench/results/$name.server_profile.json
cprof=bench/results/$name.client_profile.json
if [ $runs = 1 ]; then
    synth_model llama7b q8_0 "$scratch/m.gguf" --layers 2
    "$WEFT" split profile --model "$scratch/m.gguf" --threads 2 --batch 8 --prompt-tokens 64 \
        --reps $reps --out "$sprof"
    "$WEFT" split profile --model "$scratch/m.gguf" --threads 1 --batch 1 --prompt-tokens 64 \
        --reps $reps --out "$cprof"
    machine="$(machine_line)
$(load_line)"
    echo "$machine" > "$results/$name.machine.txt"
fi
out=$("$WEFT" bench split --server-profile "$sprof" --client-profile "$cprof" --layers 32 \
      --slow-factor 4 --seed 1 --sweep --json "$results/$name.json")
# Variants on the same measured profiles (pure computation): other arrival orders and lengths
# (seeds), twice the requests, more or less client memory, F32 client KV, a server that is not
# batching-bound, tighter SLAs, the devices' memory not modelled (nothing couples), and the
# separable accounting (--separable: each request charged its per-sequence cost alone, the
# fused step's fixed part ignored: what the planner did before docs/split.md "the fused step").
variants=("--seed 2" "--seed 3" "--per-type 2" "--laptop-mb 6000 --phone-mb 3000"
          "--laptop-mb 3000 --phone-mb 1500" "--client-kv f32" "--slowdown 1"
          "--sla-quick 1.2 --sla-chat 1.5 --sla-doc 2" "--no-devices" "--separable")
vout=""
for v in "${variants[@]}"; do
    # shellcheck disable=SC2086
    line=$("$WEFT" bench split --server-profile "$sprof" --client-profile "$cprof" --layers 32 \
           --slow-factor 4 $v | grep '^DP vs no split')
    vout+="| \`$v\` | ${line#DP vs no split: } |"$'\n'
done
{
    echo "# split_plan — split-point planner on the documented mix"
    echo
    cat "$results/$name.machine.txt" 2>/dev/null || echo "machine: unknown"
    echo "(shared machine; profiles: $name.server_profile.json, $name.client_profile.json)"
    echo
    echo "Command: bash bench/quiet.sh bash bench/split_plan.sh"
    echo
    echo '```'
    echo "$out"
    echo '```'
    echo
    echo "Variants (same profiles and command, plus these options):"
    echo
    echo "| options | DP vs no split / vs greedy |"
    echo "|---|---|"
    printf "%s" "$vout"
} > "$results/$name.md"
echo "$out"
echo "wrote $results/$name.md" >&2

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
# Then the same on a KV-bound server (--objective kv, docs/split.md "A KV-bound server").
# Reproduce: make build && bash bench/quiet.sh bash bench/split_plan.sh   (--quick: a smoke run;
# --report-only: no re-profiling, recomputes everything from the stored profiles)
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
# The KV-bound server regime (docs/split.md, "A KV-bound server"): the same mix and profiles,
# the planners minimising the server's KV memory-time (--objective kv); pure computation.
kvout=$("$WEFT" bench split --server-profile "$sprof" --client-profile "$cprof" --layers 32 \
        --slow-factor 4 --seed 1 --objective kv --json "$results/$name.kv.json")
kvvout=""
for v in "${variants[@]}"; do
    [ "$v" = "--separable" ] && continue # no split's work is the same either way: nothing to vary
    # shellcheck disable=SC2086
    line=$("$WEFT" bench split --server-profile "$sprof" --client-profile "$cprof" --layers 32 \
           --slow-factor 4 --objective kv $v | grep -E '^(DP vs no split|consistent steps)')
    kvvout+="| \`$v\` | $(sed -n 3p <<<"$line" | sed 's/^DP vs no split: //') | $(sed -n 1p <<<"$line" | sed 's/^consistent steps: //') | $(sed -n 2p <<<"$line" | sed 's/^consistent steps +half: //') |"$'\n'
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
    echo
    echo "## A KV-bound server (--objective kv)"
    echo
    echo "A saturated server whose resident requests are bounded by its KV memory: the planners"
    echo "minimise the server's KV memory-time, and server work per request is no split's x the"
    echo "plan's KV memory-time / no split's (docs/split.md, \"A KV-bound server\"). Same profiles."
    echo
    echo "Command: the main command above with \`--objective kv\` instead of \`--sweep\`"
    echo "(\`$name.kv.json\`)"
    echo
    echo '```'
    echo "$kvout"
    echo '```'
    echo
    echo "Variants under --objective kv (same profiles; first order / consistent steps / + half a step):"
    echo
    echo "| options | DP vs no split / vs greedy (first order) | consistent steps | consistent steps + half |"
    echo "|---|---|---|---|"
    printf "%s" "$kvvout"
} > "$results/$name.md"
echo "$out"
echo "wrote $results/$name.md" >&2

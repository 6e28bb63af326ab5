#!/usr/bin/env bash
# engine_flover_roofline.sh — the measurements behind the roofline note for Flover's Q8_0 run
# (docs/kernels.md): the machine's read bandwidth and the Q8_0 matmul's GFLOP/s at n = 1..32
# (build/bench_kernels 2 Q8_0 32, weights cold), and decode attention alone per KV cache type at
# the Flover run's average context (build/bench_attn 32 160 2 30). Writes
# bench/results/engine_flover_roofline.md.
# Reproduce: make build && bash bench/quiet.sh bash bench/engine_flover_roofline.sh
source "$(dirname "$0")/engine_lib.sh"
bench_args "$@"
out=$results/engine_flover_roofline.md
{
    echo "# engine_flover_roofline — bandwidth, Q8_0 matmul and attention figures for docs/kernels.md"
    echo
    machine_line
    echo
    echo '## `build/bench_kernels 2 Q8_0 32`'
    echo '```'
    "$root/build/bench_kernels" 2 Q8_0 32
    echo '```'
    echo
    echo '## `build/bench_attn 32 160 2 30`'
    echo
    "$root/build/bench_attn" 32 160 2 30
    echo
    load_line
    echo
    echo 'Reproduce: `make build && bash bench/quiet.sh bash bench/engine_flover_roofline.sh`'
} >"$out"
cat "$out"

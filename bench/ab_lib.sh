# ab_lib.sh — shared set-up of the before/after engine scripts (engine_ab.sh,
# engine_flover_parts.sh): `weft` built from a base commit into /tmp (cached per commit), the
# synthetic tiny110m Q8_0 model of the Flover λ = 0 workload, the machine line and a median.
# Sourced, not run; the caller has cd'ed to the repository root and set `set -eu`.
# ab_base_build COMMIT: builds the base commit's weft once; prints its directory
ab_base_build() {
    local dir
    dir=/tmp/weft-engine-ab-$(git rev-parse --short "$1")
    if [ ! -x "$dir/build/weft" ]; then
        rm -rf "$dir" && mkdir -p "$dir"
        git archive "$1" | tar -x -C "$dir"
        cmake -S "$dir" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF >/dev/null
        cmake --build "$dir/build" -j "$(nproc)" --target weft >/dev/null
    fi
    echo "$dir"
}
# ab_model OUT: the workload's model (tiny110m, Q8_0 weights, Llama-2 vocabulary when present)
ab_model() {
    local vocab=../shared/models/tokenizers/tokenizer_llama2_32000.bin args=()
    [ -r "$vocab" ] && args=(--vocab-from "$vocab")
    build/weft model synth --preset tiny110m --type q8_0 "${args[@]}" --out "$1" >/dev/null
}
ab_machine() {
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $(date -u +%F\ %T) UTC; load $(cut -d' ' -f1-3 /proc/loadavg)"
}
ab_median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

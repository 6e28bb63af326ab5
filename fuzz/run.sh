#!/usr/bin/env bash
# fuzz/run.sh — runs every libFuzzer binary (fuzz_*) in BUILD_DIR for SECONDS each, with a
# persistent corpus under BUILD_DIR/corpus/NAME seeded from fuzz/seeds/NAME/ (and, for
# fuzz_gguf, from the GGUF files under SHARED_DIR/models when present). Exits non-zero if any
# fuzzer finds a crash, leak or timeout, or if there is no fuzzer to run.
# usage: fuzz/run.sh BUILD_DIR SECONDS [SHARED_DIR]
set -u

if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [SHARED_DIR]" >&2
    exit 2
fi
build=$1
secs=$2
shared=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob

# The tokenizer fuzzer uses the real 32000-token Llama vocabulary when ../shared has it.
if [ -n "$shared" ] && [ -f "$shared/models/tokenizers/tokenizer_llama2_32000.bin" ]; then
    export WEFT_FUZZ_TOKENIZER="$shared/models/tokenizers/tokenizer_llama2_32000.bin"
fi

ran=0
failed=0
summary=()
for bin in "$build"/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    name=$(basename "$bin")
    corpus="$build/corpus/$name"
    mkdir -p "$corpus"
    if [ -d "$here/seeds/$name" ]; then
        for s in "$here/seeds/$name"/*; do
            [ -f "$s" ] && cp -f "$s" "$corpus/seed-$(basename "$s")"
        done
    fi
    if [ "$name" = fuzz_gguf ] && [ -n "$shared" ] && [ -d "$shared/models" ]; then
        for g in "$shared"/models/*.gguf "$shared"/models/*/*.gguf; do
            cp -f "$g" "$corpus/shared-$(basename "$g")"
        done
    fi
    log="$build/corpus/$name.log"
    echo "fuzz: $name for ${secs}s (corpus $corpus, log $log)"
    "$bin" "$corpus" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 \
        -artifact_prefix="$build/corpus/$name-" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    ran=$((ran + 1))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        summary+=("PASS $name: ${runs:-?} runs, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files")
    else
        failed=$((failed + 1))
        summary+=("FAIL $name: exit $rc — see $log and $build/corpus/$name-*")
        tail -40 "$log"
    fi
done

for line in "${summary[@]}"; do echo "fuzz: $line"; done
if [ $ran -eq 0 ]; then
    echo "fuzz: no fuzz_* binaries in $build" >&2
    exit 1
fi
[ $failed -eq 0 ] || exit 1
echo "fuzz: all $ran fuzzers clean"

# engine_lib.sh — helpers shared by the bench/engine_*.sh experiment scripts (sourced, not run):
# where weft is, a header line describing the machine and its load, picking columns out of
# `weft bench engine` CSV files by name, and the gnuplot terminal.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
WEFT=${WEFT:-$root/build/weft}
[ -x "$WEFT" ] || { echo "build first: make build (no $WEFT)" >&2; exit 1; }
results=$root/bench/results
mkdir -p "$results"
# ../shared beside the checkout, else the folder the build was configured with (make build SHARED=...).
if [ -z "${SHARED:-}" ]; then
    SHARED=$root/../shared
    if [ ! -d "$SHARED" ] && [ -r "$root/build/CMakeCache.txt" ]; then
        SHARED=$(sed -n 's/^WEFT_SHARED_DIR:[A-Z]*=//p' "$root/build/CMakeCache.txt")
    fi
fi

# machine_line: CPU, cores, load average when the script started (the machine may be shared:
# say so in every result).
_machine_cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
_machine_start="machine: ${_machine_cpu:-unknown CPU}, $(nproc) cores online; load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min); date $(date -u +%Y-%m-%d)"
machine_line() { echo "$_machine_start"; }

# csv_select FILE COL... : prints the named columns (space-separated), one line per data row.
csv_select() {
    local f=$1; shift
    awk -F, -v cols="$*" 'NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; n = split(cols, want, " ");
                                    for (j = 1; j <= n; j++) if (!(want[j] in idx)) { print "no column " want[j] > "/dev/stderr"; exit 1 } next }
                          { line = ""; for (j = 1; j <= n; j++) line = line (j > 1 ? " " : "") $(idx[want[j]]); print line }' "$f"
}

# gnuplot_term: "pngcairo" or "svg", and the matching file extension in $plot_ext.
gnuplot_term() {
    if gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo; then
        plot_term="pngcairo size 800,500"; plot_ext=png
    else
        plot_term="svg size 800,500"; plot_ext=svg
    fi
}

# synth_model PRESET TYPE OUT: writes a synthetic model once per script (with the Llama-2
# vocabulary when ../shared has it), so every run of the script loads the same file.
synth_model() {
    local vocab=$SHARED/models/tokenizers/tokenizer_llama2_32000.bin args=()
    [ -r "$vocab" ] && args=(--vocab-from "$vocab")
    "$WEFT" model synth --preset "$1" --type "$2" "${args[@]}" --out "$3" "${@:4}" >/dev/null
}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# load_line: the load average after the runs (other processes on a shared machine skew timings).
load_line() { echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"; }

# bench_args "$@": the options every experiment script takes. Sets quick (1 = smoke test with a
# tiny workload) and runs (0 = --report-only: redraw tables and plots from the existing CSV).
bench_args() {
    quick=0 runs=1
    for a in "$@"; do
        case $a in
        --quick) quick=1 ;;
        --report-only) runs=0 ;;
        *) echo "usage: $0 [--quick] [--report-only]" >&2; exit 2 ;;
        esac
    done
}

# server_url PID ERRFILE: waits (up to 60 s) until the `weft serve` started as PID, logging to
# ERRFILE, says where it listens and answers /health; prints its URL. Returns 1 (with the
# server's log on stderr) when it dies or never becomes ready. Use: url=$(server_url ...) || exit 1
server_url() {
    local u
    for _ in $(seq 1 600); do
        u=$(grep -o 'listening on http://[^ ]*' "$2" | head -1 | sed 's/listening on //' || true)
        [ -n "$u" ] && curl -fs "$u/health" >/dev/null 2>&1 && { echo "$u"; return 0; }
        kill -0 "$1" 2>/dev/null || { cat "$2" >&2; return 1; }
        sleep 0.1
    done
    echo "weft serve not ready after 60 s (log: $2)" >&2
    return 1
}

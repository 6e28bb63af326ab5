#!/usr/bin/env bash
# serve_rates.sh — weft over HTTP: `weft serve` on a synthetic ~110M LLaMA (tiny110m, Q8_0, with
# the Llama-2 vocabulary when ../shared has it, so the word prompts tokenize as in a real model)
# on a loopback port, driven by `weft bench serve` at increasing Poisson request rates
# (throughput, TTFT, TPOT, e2e per rate); then the HTTP overhead: the same workload (arrivals,
# output lengths, prompt token counts) through `weft bench engine` in-process and through
# `weft bench serve` against the server with the same engine settings, paired and alternated
# (the machine is a small, noisy VM), medians over the pairs.
# Writes bench/results/serve_rates.md and .csv (--quick: a smoke run, results in the scratch
# folder only). Not a test. usage: bench/serve_rates.sh [--quick]
source "$(dirname "$0")/engine_lib.sh"
quick=0
[ "${1:-}" = --quick ] && quick=1
command -v python3 >/dev/null || { echo "python3 is needed for the summary" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed to wait for the server" >&2; exit 1; }

type=q8_0
n=24; out_len=32; prompt_len=32; rates="1 2 4 8 16"; pairs=5; cmp_rate=2; cmp_n=16
cmp_threads="$(nproc) $(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))"
if [ $quick = 1 ]; then
    n=4; out_len=8; rates="4 16"; pairs=1; cmp_n=4; cmp_threads=$(nproc)
fi
ctx=128                      # longest prompt + output, same for both sides
kv=$((64 * ctx))             # KV cache tokens: 64 sequences (the engine's max_running)
out_md=$results/serve_rates.md
out_csv=$results/serve_rates.csv
[ $quick = 1 ] && { out_md=$scratch/serve_rates.md; out_csv=$scratch/serve_rates.csv; }

echo "== synthesizing tiny110m $type" >&2
synth_model tiny110m "$type" "$scratch/model.gguf"

# start_server THREADS: weft serve on a free loopback port; sets $url and $srv.
srv=
trap 'stop_server; rm -rf "$scratch"' EXIT
stop_server() { [ -n "$srv" ] && { kill -TERM "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }; srv=; }
start_server() {
    "$WEFT" serve --model "$scratch/model.gguf" --model-name tiny110m --port 0 --kv-layout paged \
        --kv-cache "$kv" --ctx "$ctx" --threads "$1" 2>"$scratch/srv.err" &
    srv=$!
    url=$(server_url "$srv" "$scratch/srv.err") || exit 1
    echo "== server at $url, $1 kernel threads" >&2
    # warm-up: page in the weights, as bench engine's --warmup does
    "$WEFT" bench serve --url "$url" -n 2 --output-len 16 -q >/dev/null
}
cores=$(nproc)
start_server "$cores"

common=(--prompt-len "$prompt_len" --output-len "$out_len" --seed 1)
for r in $rates; do
    echo "== rate $r req/s" >&2
    "$WEFT" bench serve --url "$url" --model tiny110m -n "$n" --rate "$r" "${common[@]}" \
        --timeout 120 --label "rate=$r" --csv-append "$scratch/rates.csv" -q >/dev/null ||
        echo "warning: rate $r had failures" >&2
done

# engine_run THREADS K / http_run THREADS K: one side of overhead pair K
engine_run() {
    "$WEFT" bench engine --model "$scratch/model.gguf" --mode fused --kv paged --kv-tokens "$kv" \
        --max-seq-len "$ctx" --threads "$1" -n "$cmp_n" --rate "$cmp_rate" "${common[@]}" \
        --label "engine-t$1-$2" --csv-append "$scratch/cmp.csv" -q >/dev/null
}
http_run() {
    "$WEFT" bench serve --url "$url" --model tiny110m -n "$cmp_n" --rate "$cmp_rate" "${common[@]}" \
        --timeout 120 --label "http-t$1-$2" --csv-append "$scratch/cmp.csv" -q >/dev/null
}
# Kernel threads = all cores leaves no core for the HTTP threads and the client, so the
# comparison also runs with one core left free.
for t in $cmp_threads; do
    [ "$t" != "$cores" ] && { stop_server; start_server "$t"; }
    for k in $(seq 1 $pairs); do
        echo "== overhead, $t threads, pair $k/$pairs" >&2
        if [ $((k % 2)) = 1 ]; then engine_run "$t" "$k"; http_run "$t" "$k"; else http_run "$t" "$k"; engine_run "$t" "$k"; fi
    done
done
stop_server

{ cat "$scratch/rates.csv"; tail -n +2 "$scratch/cmp.csv"; } >"$out_csv"
python3 - "$scratch/rates.csv" "$scratch/cmp.csv" "$(machine_line)" "$(load_line)" \
    "$n" "$prompt_len" "$out_len" "$cmp_n" "$cmp_rate" "$pairs" "$type" "$ctx" "$kv" >"$out_md" <<'PY'
import csv, statistics as st, sys
rates_csv, cmp_csv, machine, load, n, plen, olen, cmp_n, cmp_rate, pairs, typ, ctx, kv = sys.argv[1:14]
rows = list(csv.DictReader(open(rates_csv)))
cmp = list(csv.DictReader(open(cmp_csv)))
f = lambda r, k: float(r[k])
print("# serve_rates — weft serve over HTTP, driven by weft bench serve\n")
print(machine)
print(load + "\n")
print(f"Server: `weft serve` on tiny110m synth {typ.upper()} (~110M params, Llama-2 32000 vocabulary), "
      f"fused engine, paged KV of {kv} tokens, context {ctx}, all cores; client `weft bench serve` "
      f"on the same machine (loopback), streamed with include_usage, ignore_eos.")
print(f"Workload per rate: {n} requests, Poisson arrivals, prompts of {int(plen) - 1} common words "
      f"(= {plen} tokens with BOS), {olen} output tokens each, seed 1.\n")
print("| rate req/s | done | errors HTTP/net | out tok/s | req/s | TTFT p50 ms | TTFT p99 ms | "
      "TPOT p50 ms | TPOT p99 ms | e2e p50 s | e2e p99 s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['label'].split('=')[1]} | {r['finished']}/{r['requests']} | {r['http_errors']}/{r['net_errors']} | "
          f"{f(r,'out_tok_s'):.1f} | {f(r,'req_s'):.2f} | {f(r,'ttft_p50_ms'):.1f} | {f(r,'ttft_p99_ms'):.1f} | "
          f"{f(r,'tpot_p50_ms'):.1f} | {f(r,'tpot_p99_ms'):.1f} | {f(r,'e2e_p50_s'):.3f} | {f(r,'e2e_p99_s'):.3f} |")
print(f"\n## HTTP overhead\n")
print(f"The same workload ({cmp_n} requests, Poisson {cmp_rate} req/s, {plen}-token prompts, {olen} output "
      f"tokens, seed 1: same arrival times and lengths) through `weft bench engine` in-process (same "
      f"model file, fused, paged KV {kv} tokens, max_seq_len {ctx}) and through `weft bench serve` "
      f"against the server, both with the same kernel thread count; {pairs} pairs per thread count, "
      f"alternating which goes first. Overhead = HTTP / in-process − 1 per pair; medians over the pairs.\n")
print("| kernel threads | pair | in-process e2e mean s | HTTP e2e mean s | in-process e2e p50 s | "
      "HTTP e2e p50 s | prompt tok engine/HTTP | overhead mean | overhead p50 |")
print("|---|---|---|---|---|---|---|---|---|")
def key(label):  # "engine-t2-3" -> ("2", "3")
    _, t, k = label.split("-")
    return t[1:], k
eng = {key(r["label"]): r for r in cmp if r["label"].startswith("engine-")}
htt = {key(r["label"]): r for r in cmp if r["label"].startswith("http-")}
for t in sorted({t for t, _ in eng}, key=int, reverse=True):
    om, op, em, hm, ep, hp = [], [], [], [], [], []
    for tk in sorted((x for x in eng if x[0] == t), key=lambda x: int(x[1])):
        e, h = eng[tk], htt.get(tk)
        if not h: continue
        a, b = f(e, "e2e_mean_s"), f(h, "e2e_mean_s")
        c, d = f(e, "e2e_p50_s"), f(h, "e2e_p50_s")
        om.append(100 * (b / a - 1)); op.append(100 * (d / c - 1))
        em.append(a); hm.append(b); ep.append(c); hp.append(d)
        print(f"| {t} | {tk[1]} | {a:.3f} | {b:.3f} | {c:.3f} | {d:.3f} | {e['prompt_tokens']}/{h['prompt_tokens']} | "
              f"{om[-1]:+.1f}% | {op[-1]:+.1f}% |")
    if om:
        print(f"| {t} | **median** | {st.median(em):.3f} | {st.median(hm):.3f} | {st.median(ep):.3f} | "
              f"{st.median(hp):.3f} | | **{st.median(om):+.1f}%** | **{st.median(op):+.1f}%** |")
print("\nReproduce: `make build SHARED=/work/shared && bash bench/serve_rates.sh` (CSV: serve_rates.csv, "
      "one row per run, the columns of `weft bench engine`).")
PY
cat "$out_md"

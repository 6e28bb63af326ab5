#!/usr/bin/env bash
# split_real.sh — issue 6, evaluation (b): the real run. `weft serve --split-port` plus several
# `weft split-client` processes on this machine, each client in its own network namespace
# (veth pair to the host) with its link shaped: bandwidth by `tc ... tbf` on both ends of the
# veth, delay by bench/split_relay.c, a delaying TCP relay inside the namespace — the stand-in
# for `tc netem delay`, because THIS KERNEL HAS NO sch_netem ("unknown qdisc"; no modprobe).
# Two phases over the same mix of clients and requests: "no split" (p = 0: every client sends
# its prompt's token ids, protocol v2, and the server runs every layer and streams the tokens) and "auto" (the server plans each request's p
# with the planner, `--split auto`). For each phase: the server's measured work (CPU-seconds of
# the server process from /proc/PID/stat, per request and per output token) and SLA attainment
# (end-to-end time measured by the client vs its SLA), against what the planner predicted for the
# same requests (the server logs split_cost_eval's prediction for every request: its server work
# and whether it meets the SLA). Server on CPU 0 (1 thread), clients and relays on CPU 1.
# Needs root, ip netns, veth, tc tbf. Writes bench/results/split_real.md and .csv
# (--quick: a smoke run, results in the scratch folder only). Not a test.
# The phases run in rounds, ABBA (no split, auto, auto, no split, ...: SPLIT_ROUNDS, default 2;
# SPLIT_REQS requests per client per round, default 8), so that the machine's drift over a run
# falls on both; SPLIT_AUTO_ARG=0 runs the "auto" phase unsplit (an A/A control of that noise).
# usage: [SPLIT_RUN=N] [SPLIT_ROUNDS=R] [SPLIT_REQS=Q] [SPLIT_AUTO_ARG=auto|P] bench/split_real.sh [--quick]
source "$(dirname "$0")/engine_lib.sh"
quick=0
[ "${1:-}" = --quick ] && quick=1
[ "$(id -u)" = 0 ] || { echo "split_real.sh needs root (network namespaces, tc)" >&2; exit 1; }
command -v ip >/dev/null && command -v tc >/dev/null || { echo "needs iproute2 (ip, tc)" >&2; exit 1; }
RELAY=$root/build/split_relay
PROFILE=$root/build/split_real_profile
[ -x "$RELAY" ] && [ -x "$PROFILE" ] || { echo "build first (no $RELAY / $PROFILE)" >&2; exit 1; }

reqs=${SPLIT_REQS:-8} # requests per client per round of a phase, one after another
rounds=${SPLIT_ROUNDS:-2} # rounds of each phase, in the order no split, auto, auto, no split, ...
auto_arg=${SPLIT_AUTO_ARG:-auto} # the "auto" phase's --split; SPLIT_AUTO_ARG=0: an A/A control (both phases unsplit)
[ $quick = 1 ] && { reqs=1; rounds=1; }
tag=${SPLIT_RUN:+_run$SPLIT_RUN} # SPLIT_RUN=N: keep repeated runs side by side
out_md=$results/split_real$tag.md
out_csv=$results/split_real$tag.csv
[ $quick = 1 ] && { out_md=$scratch/split_real.md; out_csv=$scratch/split_real.csv; }

# The client mix: name, bandwidth (tbf rate), one-way delay ms, prompt words, output tokens, SLA s
clients=(
    "fast-link   100mbit 1  24  48 1.2"
    "slow-link   4mbit   15 80  32 2.5"
    "mid-link    20mbit  5  150 48 2.0"
    "tight-sla   100mbit 1  16  64 0.35"
)
nc=${#clients[@]}
words="the little cat sat on a warm mat and looked at the big blue sky while birds sang"

pre=wsr
cleanup() {
    set +e
    [ -n "${srv:-}" ] && kill -TERM "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
    for p in "${relays[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    for i in $(seq 1 "$nc"); do
        ip netns del $pre$i 2>/dev/null
        ip link del ${pre}${i}h 2>/dev/null
    done
    rm -rf "$scratch"
}
trap cleanup EXIT

echo "== synthesizing tiny15m f32" >&2
synth_model tiny15m f32 "$scratch/model.gguf"
M=$scratch/model.gguf
L=$("$WEFT" model inspect "$M" | grep -o 'block_count *[0-9]*' | grep -o '[0-9]*$' | head -1)

echo "== profiling (server: CPU 0, 1 thread; a client: CPU 1, 1 thread)" >&2
taskset -c 0 "$PROFILE" "$M" 1 64 31 "$scratch/server.json" --engine
taskset -c 1 "$PROFILE" "$M" 1 64 31 "$scratch/client1.json"
# The clients share CPU 1 (and the relays run there too): each is modelled as a device with
# 1/nc of that core, i.e. its single-thread profile times nc.
python3 - "$scratch/client1.json" "$scratch/client.json" "$nc" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); f = float(sys.argv[3])
for k in p["cost"]: p["cost"][k] *= f
p.pop("batched", None)  # a client decodes its own request alone
p["device"] += f" x{f:g} (1/{f:g} of a core)"
json.dump(p, open(sys.argv[2], "w"), indent=2)
PY

start_server() { # PORT (0 = any): starts $srv with server.json, sets $sp
    taskset -c 0 "$WEFT" serve --model "$M" --host 0.0.0.0 --port 0 --split-port "$1" \
        --split-profile "$scratch/server.json" --threads 1 --ctx 256 --kv-cache $((256 * 16)) \
        2>"$scratch/srv.err" &
    srv=$!
    sp=
    for i in $(seq 1 200); do
        sp=$(grep -o 'split clients on [^ ]*' "$scratch/srv.err" | sed 's/.*://') || true
        [ -n "$sp" ] && break
        sleep 0.05
    done
    [ -n "$sp" ] || { cat "$scratch/srv.err" >&2; exit 1; }
}
echo "== server" >&2
start_server 0
echo "== namespaces and links" >&2
relays=()
for i in $(seq 1 "$nc"); do
    read -r name rate delay pw out sla <<<"${clients[$((i - 1))]}"
    ns=$pre$i
    ip netns del $ns 2>/dev/null || true
    ip link del ${pre}${i}h 2>/dev/null || true
    ip netns add $ns
    ip link add ${pre}${i}h type veth peer name ${pre}${i}c
    ip link set ${pre}${i}c netns $ns
    ip addr add 10.78.$i.1/24 dev ${pre}${i}h
    ip link set ${pre}${i}h up
    ip netns exec $ns ip addr add 10.78.$i.2/24 dev ${pre}${i}c
    ip netns exec $ns ip link set ${pre}${i}c up
    ip netns exec $ns ip link set lo up
    # bandwidth both ways: host -> client on the host end, client -> host inside the namespace
    tc qdisc add dev ${pre}${i}h root tbf rate $rate burst 32kb latency 100ms
    ip netns exec $ns tc qdisc add dev ${pre}${i}c root tbf rate $rate burst 32kb latency 100ms
    # delay: the relay inside the namespace, client -> 127.0.0.1:7000 -> server
    ip netns exec $ns taskset -c 1 "$RELAY" 127.0.0.1 7000 10.78.$i.1 "$sp" "$delay" \
        2>"$scratch/relay$i.err" &
    relays+=($!)
done
sleep 0.3
tc qdisc show dev ${pre}1h >&2

cpu_s() { # utime + stime of the server, seconds
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' /proc/$srv/stat
}
bps() { # tbf rate -> bytes/s
    case $1 in *mbit) echo $(( ${1%mbit} * 125000 ));; *kbit) echo $(( ${1%kbit} * 125 ));; esac
}

run_phase() { # PHASE SPLIT(0|auto)
    local phase=$1 split=$2 i
    local c0 c1 n0
    n0=$(grep -c '^split plan:' "$scratch/srv.err" || true)
    c0=$(cpu_s)
    for i in $(seq 1 "$nc"); do
        read -r name rate delay pw out sla <<<"${clients[$((i - 1))]}"
        local prompt
        prompt=$(python3 -c "import sys; w=sys.argv[1].split(); n=int(sys.argv[2]); print(' '.join(w[k % len(w)] for k in range(n)))" "$words" "$pw")
        (
            for r in $(seq 1 "$reqs"); do
                ip netns exec $pre$i taskset -c 1 "$WEFT" split-client --server 127.0.0.1:7000 \
                    --model "$M" --split "$split" --profile "$scratch/client.json" \
                    --sla-ms "$(python3 -c "print($sla * 1000)")" --link-bw "$(bps "$rate")" \
                    --link-rtt-ms $((2 * delay)) -n "$out" -p "$prompt" -t 1 --no-echo \
                    >/dev/null 2>>"$scratch/$phase.client$i.err" || echo "FAILED" >>"$scratch/$phase.client$i.err"
            done
        ) &
    done
    wait $(jobs -p | grep -v -e "$srv" $(printf -- '-e %s ' "${relays[@]}")) 2>/dev/null || true
    c1=$(cpu_s)
    grep '^split plan:' "$scratch/srv.err" | tail -n +$((n0 + 1)) >>"$scratch/$phase.plan"
    # the server's plan for every request (p, batch, batch_split, min_entry, prediction)
    [ $quick = 1 ] || cp "$scratch/$phase.plan" "$results/split_real${tag}_$phase.plan.log"
    echo "$phase $c0 $c1" >>"$scratch/cpu"
}

# Calibration of the server's network path (the profile's "io"): the server CPU-seconds per
# token beyond what its engine profile predicts, for tokens streamed at p = 0 and for round
# trips at p = L - 1, from 8 + 8 requests of the first client alone, and for tokens streamed
# at p = 0 by all clients at once (4 requests each; the per-step part is shared) — none of it
# part of the phases.
# The server then restarts on the same port with the measured io in its profile.
calibrate() { # SPLIT -> "measured predicted tokens"
    local n0 c0 c1 prompt
    read -r name rate delay pw out sla <<<"${clients[0]}"
    prompt=$(python3 -c "import sys; w=sys.argv[1].split(); print(' '.join(w[k % len(w)] for k in range(int(sys.argv[2]))))" "$words" "$pw")
    n0=$(grep -c '^split plan:' "$scratch/srv.err" || true)
    c0=$(cpu_s)
    for r in 1 2 3 4 5 6 7 8; do
        ip netns exec ${pre}1 taskset -c 1 "$WEFT" split-client --server 127.0.0.1:7000 \
            --model "$M" --split "$1" -n "$out" -p "$prompt" -t 1 --no-echo >/dev/null 2>>"$scratch/cal.err"
    done
    c1=$(cpu_s)
    grep '^split plan:' "$scratch/srv.err" | tail -n +$((n0 + 1)) | python3 -c "
import re, sys
pl = [dict(re.findall(r'(\w+)=(\S+)', l)) for l in sys.stdin]
print($c1 - $c0, sum(float(p['server_work_s']) for p in pl), sum(int(p['output']) for p in pl))"
}
calibrate_streams() { # p = 0 from every client at once (4 requests each): the batched io
    local n0 c0 c1 prompt i
    read -r name rate delay pw out sla <<<"${clients[0]}"
    prompt=$(python3 -c "import sys; w=sys.argv[1].split(); print(' '.join(w[k % len(w)] for k in range(int(sys.argv[2]))))" "$words" "$pw")
    n0=$(grep -c '^split plan:' "$scratch/srv.err" || true)
    c0=$(cpu_s)
    for i in $(seq 1 "$nc"); do
        ( for r in 1 2 3 4; do
            ip netns exec $pre$i taskset -c 1 "$WEFT" split-client --server 127.0.0.1:7000 \
                --model "$M" --split 0 -n "$out" -p "$prompt" -t 1 --no-echo >/dev/null 2>>"$scratch/cal.err"
          done ) &
    done
    wait $(jobs -p | grep -v -e "$srv" $(printf -- '-e %s ' "${relays[@]}")) 2>/dev/null || true
    c1=$(cpu_s)
    grep '^split plan:' "$scratch/srv.err" | tail -n +$((n0 + 1)) | python3 -c "
import re, sys
pl = [dict(re.findall(r'(\w+)=(\S+)', l)) for l in sys.stdin]
print($c1 - $c0, sum(float(p['server_work_s']) for p in pl), sum(int(p['output']) for p in pl))"
}
echo "== calibrating the server's network path" >&2
cal0=$(calibrate 0)
cal1=$(calibrate $((L - 1)))
calb=$(calibrate_streams)
python3 - "$scratch/server.json" "$cal0" "$cal1" "$calb" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
m0, p0, t0 = map(float, sys.argv[2].split()); m1, p1, t1 = map(float, sys.argv[3].split())
mb, pb, tb = map(float, sys.argv[4].split())
p["io"] = {"token_s": max(0.0, (m0 - p0) / t0), "frame_s": max(0.0, (m1 - p1) / t1),
           "token_batched_s": max(0.0, (mb - pb) / tb)}
print(f"io: {p['io']['token_s']*1e3:.3f} ms per streamed token alone (measured {m0:.2f} vs {p0:.2f} CPU-s), "
      f"{p['io']['token_batched_s']*1e3:.3f} ms with 4 streams (measured {mb:.2f} vs {pb:.2f}), "
      f"{p['io']['frame_s']*1e3:.3f} ms per round trip (measured {m1:.2f} vs {p1:.2f})", file=sys.stderr)
json.dump(p, open(sys.argv[1], "w"), indent=2)
PY
kill -TERM "$srv"; wait "$srv" 2>/dev/null || true
start_server "$sp"

: >"$scratch/cpu"
# ABBA: the machine drifts (other work, the CPU's state) over a run; alternating the phases'
# order round by round lets the drift fall on both
for k in $(seq 1 "$rounds"); do
    if [ $((k % 2)) = 1 ]; then order="nosplit auto"; else order="auto nosplit"; fi
    for ph in $order; do
        echo "== round $k, phase: $ph" >&2
        if [ $ph = nosplit ]; then run_phase nosplit 0; else run_phase auto "$auto_arg"; fi
    done
done

python3 - "$scratch" "$nc" "$out_md" "$out_csv" "$(machine_line)" "$L" "${clients[@]}" <<'PY'
import re, sys, json
d, nc, md, csv, machine, L = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
clients = [c.split() for c in sys.argv[7:]]
cpu = {}; rounds = []
for l in open(f"{d}/cpu"):  # summed over the rounds of each phase
    ph, a, b = l.split()[:3]
    cpu[ph] = cpu.get(ph, 0.0) + float(b) - float(a); rounds.append((ph, float(b) - float(a)))
srvp = json.load(open(f"{d}/server.json")); clip = json.load(open(f"{d}/client.json"))
rows = []; lines = []
for phase in ["nosplit", "auto"]:
    plan = [dict(re.findall(r"(\w+)=(\S+)", l)) for l in open(f"{d}/{phase}.plan")]
    pred_work = sum(float(p["server_work_s"]) for p in plan)
    pred_ok = sum(int(p["sla_ok"]) for p in plan)
    n = ok = toks = fails = 0; ps = []
    per_client = []
    for i, c in enumerate(clients, 1):
        sla = float(c[5])
        txt = open(f"{d}/{phase}.client{i}.err").read()
        fails += txt.count("FAILED")
        cn = cok = 0; cp = set(); lat = []; ptok = None
        for m in re.finditer(r"split (\d+)/\d+ \| prompt (\d+) \| generated (\d+) .*? total ([\d.]+) s", txt):
            p, pr, g, tot = int(m[1]), int(m[2]), int(m[3]), float(m[4])
            n += 1; cn += 1; toks += g; cp.add(p); ps.append(p); lat.append(tot); ptok = pr
            if tot <= sla: ok += 1; cok += 1
        # the server's predictions for this client's requests (its prompt length is its own)
        plat = [float(q["latency_s"]) for q in plan if ptok is not None and int(q["prompt"]) == ptok]
        pok_c = sum(int(q["sla_ok"]) for q in plan if ptok is not None and int(q["prompt"]) == ptok)
        per_client.append((c[0], sorted(cp), cok, cn, sum(lat) / max(len(lat), 1),
                           sum(plat) / max(len(plat), 1), pok_c, len(plat)))
    meas = cpu[phase]
    rows.append((phase, n, fails, toks, meas, pred_work, ok, pred_ok, len(plan), per_client))
with open(csv, "w") as f:
    f.write("phase,requests,failed,output_tokens,server_cpu_s,predicted_server_work_s,sla_met,predicted_sla_met\n")
    for r in rows: f.write(",".join(str(x) for x in r[:8]) + "\n")
out = []
out.append("# Split inference — real run (bench/split_real.sh)\n")
out.append(machine + "; shared VM: other engineers' jobs may have run at low priority.\n")
out.append(f"Model: synthetic tiny15m (F32, {L} layers, dim 288, Llama-2 vocabulary when ../shared has it). "
           "Server `weft serve --split-port 0 --split-profile server.json --threads 1` pinned to CPU 0; "
           f"{nc} client namespaces (veth + tbf both ways, delay by bench/split_relay.c because this kernel has no "
           "sch_netem), clients and relays pinned to CPU 1, each client running its requests one after another, "
           f"all clients at once; {reqs} requests per client per round, {rounds} rounds of each phase (ABBA).\n")
out.append(f"Server profile (bench/split_real_profile.c --engine: CPU-seconds through the engine, ordinary requests on the model cut to 1 and to L layers, alone and 4 at once, 64-token prompt, least of 7 runs; 1 thread): layer prefill {srvp['cost']['layer_prefill_s']:.3g} s/token, "
           f"layer decode {srvp['cost']['layer_decode_s']:.3g} s, head prefill {srvp['cost']['head_prefill_s']:.3g} s, "
           f"head decode {srvp['cost']['head_decode_s']:.3g} s; batched x{srvp.get('batched', {}).get('decode_batch', 1)}: layer decode {srvp.get('batched', {}).get('cost', srvp['cost'])['layer_decode_s']:.3g} s, head decode {srvp.get('batched', {}).get('cost', srvp['cost'])['head_decode_s']:.3g} s; "
           f"network path (calibration before the phases: 8 + 8 requests of the first client alone at p = 0 and p = L - 1, 4 requests from every client at once at p = 0): {1e3*srvp.get('io', {}).get('token_s', 0):.3f} ms per streamed token alone, {1e3*srvp.get('io', {}).get('token_batched_s', 0):.3f} ms with 4 streams, {1e3*srvp.get('io', {}).get('frame_s', 0):.3f} ms per round trip. Client profile: the same measurement on CPU 1 times {nc} "
           "(the clients share that core; bench/split_real_profile.c without --engine: the forward alone, median of 31). The planner (split_choose_auto / split_predict_auto, the counterfactual batch model of src/split/batch_model.c) predicts each request's server work from these by simulating the engine's steps with the requests the server runs when it connects (their split points, tokens left and measured client cycles) plus this one at its p: its prefill plus what the simulated total gains with it.\n")
out.append("| client | link | one-way delay | prompt words | output | SLA |\n|---|---|---|---|---|---|")
for c in clients: out.append(f"| {c[0]} | {c[1]} | {c[2]} ms | {c[3]} | {c[4]} | {c[5]} s |")
out.append("")
out.append("| phase | requests | failed | output tokens | server CPU-s measured | predicted | measured / predicted | CPU-s per request | CPU-ms per output token | SLA met measured | SLA met predicted |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|")
for (phase, n, fails, toks, meas, pred, ok, pok, npl, pc) in rows:
    ratio = meas / pred if pred > 0 else float("nan")
    out.append(f"| {phase} | {n} | {fails} | {toks} | {meas:.3f} | {pred:.3f} | {ratio:.2f} | {meas/max(n,1):.4f} | {1e3*meas/max(toks,1):.3f} | {ok}/{n} ({100*ok/max(n,1):.0f}%) | {pok}/{npl} ({100*pok/max(npl,1):.0f}%) |")
out.append("")
out.append("Split points the planner chose (auto): " + "; ".join(f"{c[0]}: p in {c[1]}, SLA {c[2]}/{c[3]}" for c in rows[1][9]))
out.append("")
out.append("| phase | client | p | latency measured (mean) | predicted (mean) | measured / predicted | SLA | SLA met measured | predicted |")
out.append("|---|---|---|---|---|---|---|---|---|")
for (phase, n, fails, toks, meas, pred, ok, pok, npl, pc) in rows:
    for i, (name, pset, cok, cn, ml, pl, pokc, npc) in enumerate(pc):
        out.append(f"| {phase} | {name} | {pset} | {ml:.3f} s | {pl:.3f} s | {ml / pl if pl > 0 else float('nan'):.2f} | {clients[i][5]} s | {cok}/{cn} | {pokc}/{npc} |")
out.append("\nServer CPU-s of each round, in the order run (the phases alternate ABBA so that the machine's drift falls on both): "
           + ", ".join(f"{ph} {c:.3f}" for ph, c in rounds))
if rows[0][4] > 0:
    out.append(f"\nServer work, auto vs no split: measured {100*(rows[1][4]/rows[0][4]-1):+.1f}%, "
               f"predicted {100*(rows[1][5]/rows[0][5]-1):+.1f}% (negative: auto did less work).")
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY

#!/usr/bin/python3
"""overload.py — one wave of tests/test_server_overload.sh: N clients released at once by a
barrier (some streaming), against a server with a small --max-queue. Every answer must be
either 200 with a complete body (non-streaming: valid JSON with max_tokens completion tokens;
streaming: events up to data: [DONE] with a finish_reason) or 429 queue_full with a Retry-After
header. Python 3 standard library only.

usage: overload.py URL N_CLIENTS N_STREAMING MAX_TOKENS SLOW_FACTOR
Prints "overload: ok=A rejected=B"; exits 1 if any answer was neither.
"""
import http.client
import json
import sys
import threading
import urllib.parse

URL = sys.argv[1]
N, N_STREAM, MAX_TOKENS, SLOW = (int(a) for a in sys.argv[2:6])
HOST, PORT = urllib.parse.urlsplit(URL).hostname, urllib.parse.urlsplit(URL).port
barrier = threading.Barrier(N, timeout=30 * SLOW)
results = [None] * N


def one(i):
    stream = i < N_STREAM
    chat = i % 2 == 1
    body = {"max_tokens": MAX_TOKENS, "ignore_eos": True, "stream": stream, "seed": i}
    if chat:
        body["messages"] = [{"role": "user", "content": "Once upon a time"}]
    else:
        body["prompt"] = "Once upon a time"
    path = "/v1/chat/completions" if chat else "/v1/completions"
    c = http.client.HTTPConnection(HOST, PORT, timeout=120 * SLOW)
    try:
        barrier.wait()
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status == 429:
            assert r.getheader("Retry-After"), "429 without Retry-After"
            assert json.loads(data)["error"]["code"] == "queue_full", data[:200]
            results[i] = "rejected"
            return
        assert r.status == 200, "status %d: %r" % (r.status, data[:300])
        if not stream:
            j = json.loads(data)
            assert j["usage"]["completion_tokens"] == MAX_TOKENS, j["usage"]
            assert j["choices"][0]["finish_reason"] == "length", j["choices"][0]
        else:
            assert data.endswith(b"data: [DONE]\n\n"), "no [DONE]: %r" % data[-200:]
            events = [json.loads(e[6:]) for e in data.decode().split("\n\n")[:-2]]
            finish = [ch["finish_reason"] for e in events for ch in e["choices"]
                      if ch["finish_reason"]]
            assert finish == ["length"], finish
            assert "error" not in events[-1], events[-1]
        results[i] = "ok"
    except Exception as e:
        results[i] = "client %d (%s%s): %s: %s" % (i, "stream " if stream else "",
                                                    "chat" if chat else "cmpl",
                                                    type(e).__name__, e)
    finally:
        c.close()


threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join(300 * SLOW)
ok = results.count("ok")
rejected = results.count("rejected")
bad = [r for r in results if r not in ("ok", "rejected")]
for b in bad:
    print("bad answer: %s" % b)
print("overload: ok=%d rejected=%d bad=%d" % (ok, rejected, len(bad)), flush=True)
sys.exit(1 if bad else 0)

#!/usr/bin/python3
"""disconnect.py — clients of tests/test_server_disconnect.sh that hang up at random points:
mid-request, right after the request (in the queue or prefill), after the response headers,
after a random number of SSE events, or while a non-streaming request generates; some close
politely (FIN), some reset (RST via SO_LINGER 0). Runs N clients with bounded concurrency.
Python 3 standard library only.

usage: disconnect.py URL N CONCURRENCY SEED SLOW_FACTOR
Prints one line per mode with its count, and "disconnect: N clients done"; exits 1 when a
client saw something it should not (a non-200 status other than 429, a malformed event).
"""
import concurrent.futures
import json
import random
import socket
import struct
import sys
import time
import urllib.parse

URL = sys.argv[1]
N, CONCURRENCY, SEED, SLOW = (int(a) for a in sys.argv[2:6])
HOST, PORT = urllib.parse.urlsplit(URL).hostname, urllib.parse.urlsplit(URL).port
TIMEOUT_S = 30 * SLOW

MODES = ["partial-request", "after-request", "after-headers", "mid-stream", "mid-stream-chat",
         "non-streaming", "full-stream"]


def http_request(path, body):
    # HTTP/1.0: the stream comes unchunked, so SSE events can be split on blank lines
    b = json.dumps(body).encode()
    return ("POST %s HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (path, len(b))).encode() + b


def hang_up(s, rng):
    if rng.random() < 0.5:  # reset instead of a FIN
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError("closed before the headers: %r" % data[:200])
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ")[1])
    return status, head, rest


def client(i):
    rng = random.Random(SEED * 1000003 + i)
    mode = MODES[i % len(MODES)]
    chat = mode == "mid-stream-chat" or rng.random() < 0.3
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body = {"max_tokens": rng.choice([50, 200, 450]), "ignore_eos": True,
            "stream": mode != "non-streaming", "temperature": 0.8, "seed": i}
    if chat:
        body["messages"] = [{"role": "user", "content": "Once upon a time"}]
    else:
        body["prompt"] = "Once upon a time"
    req = http_request(path, body)
    s = socket.create_connection((HOST, PORT), timeout=TIMEOUT_S)
    try:
        if mode == "partial-request":
            s.sendall(req[:rng.randrange(1, len(req))])
            time.sleep(rng.random() * 0.2)
            hang_up(s, rng)
            return mode, None
        s.sendall(req)
        if mode == "after-request" or mode == "non-streaming":
            time.sleep(rng.random() * 0.3)  # in the queue, in prefill or generating
            hang_up(s, rng)
            return mode, None
        status, head, rest = read_head(s)
        if status == 429:  # a full queue is an allowed answer
            return mode, None
        assert status == 200, head[:300]
        if mode == "after-headers":
            hang_up(s, rng)
            return mode, None
        want_events = rng.randrange(1, 30) if mode.startswith("mid-stream") else 10 ** 6
        buf, events = rest, 0
        while events < want_events:
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                assert ev.startswith(b"data: "), ev[:200]
                payload = ev[6:]
                if payload == b"[DONE]":
                    return mode, None
                obj = json.loads(payload)
                assert "choices" in obj, obj
                events += 1
            if events >= want_events:
                break
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError("the stream ended without [DONE]")
            buf += chunk
        hang_up(s, rng)
        return mode, None
    except Exception as e:
        return mode, "%s: %s" % (type(e).__name__, e)
    finally:
        try:
            s.close()
        except OSError:
            pass


counts, errors = {}, []
with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
    futures = [pool.submit(client, i) for i in range(N)]
    for f in concurrent.futures.as_completed(futures, timeout=120 * SLOW):
        mode, err = f.result()
        counts[mode] = counts.get(mode, 0) + 1
        if err:
            errors.append("%s: %s" % (mode, err))
for m in MODES:
    print("  %-16s %d" % (m, counts.get(m, 0)))
for e in errors:
    print("client error: " + e)
print("disconnect: %d clients done, %d errors" % (sum(counts.values()), len(errors)), flush=True)
sys.exit(1 if errors else 0)

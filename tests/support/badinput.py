#!/usr/bin/python3
"""badinput.py — the bad-input cases of tests/test_server_badinput.sh, run against a live
`weft serve` (started with --api-key, a small --ctx, --max-body-bytes and
--connection-timeout-s). Each case sends one malformed, mistyped, oversized, unauthorized or
stalled request and asserts the exact HTTP status and, for the server's own error bodies,
OpenAI's error shape {"error": {"message", "type", "param", "code"}} with the expected code.
Raw-socket cases cover what an HTTP library will not send: slow-loris stalls, oversized
headers, garbage request lines, pipelining. Python 3 standard library only.

usage: badinput.py URL KEY CTX MAX_BODY_BYTES CONNECTION_TIMEOUT_S SLOW_FACTOR
Prints "ok: NAME" per case, "FAIL: NAME: why" for failures; exits 1 if any case failed.
"""
import http.client
import json
import re
import socket
import sys
import threading
import time
import urllib.parse

URL, KEY = sys.argv[1], sys.argv[2]
CTX, MAX_BODY, CONN_TIMEOUT_S, SLOW = (int(a) for a in sys.argv[3:7])
HOST, PORT = urllib.parse.urlsplit(URL).hostname, urllib.parse.urlsplit(URL).port
AUTH = {"Authorization": "Bearer " + KEY}
TIMEOUT_S = 30 * SLOW
ERROR_KEYS = ["code", "message", "param", "type"]

n_ok = 0
failures = []


def request(method, path, body=None, headers=None, auth=True, chunks=None):
    """One HTTP request on a fresh connection: (status, headers dict lower-cased, body bytes)."""
    h = dict(AUTH) if auth else {}
    if body is not None or chunks is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    if isinstance(body, str):
        body = body.encode()
    c = http.client.HTTPConnection(HOST, PORT, timeout=TIMEOUT_S)
    try:
        if chunks is not None:
            c.request(method, path, body=iter(chunks), headers=h, encode_chunked=True)
        else:
            c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# raw-socket helpers
def recv_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def recv_until_closed(s, limit_s):
    """Reads until the server closes; returns (bytes, seconds). Fails past limit_s."""
    t0 = time.monotonic()
    data = b""
    s.settimeout(limit_s)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("still open after %.1f s (%r)" % (limit_s, data[:200]))
    return data, time.monotonic() - t0


def check(name, fn):
    global n_ok
    try:
        fn()
    except Exception as e:  # one failed case must not hide the others
        failures.append(name)
        print("FAIL: %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        return
    n_ok += 1
    print("ok: " + name, flush=True)


def error_of(status, body, want_status, want_code=None, want_param=None):
    assert status == want_status, "status %d, want %d: %r" % (status, want_status, body[:300])
    j = json.loads(body)
    assert list(j.keys()) == ["error"], j
    e = j["error"]
    assert sorted(e.keys()) == ERROR_KEYS, e
    assert isinstance(e["message"], str) and e["message"], e
    assert isinstance(e["type"], str) and e["type"], e
    if want_code is not None:
        assert e["code"] == want_code, "code %r, want %r (%s)" % (e["code"], want_code, e["message"])
    if want_param is not None:
        assert e["param"] == want_param, "param %r, want %r" % (e["param"], want_param)
    return e


def expect_error(name, path, body, status, code=None, param=None, **kw):
    def run():
        st, _, b = request("POST", path, body, **kw)
        error_of(st, b, status, code, param)
    check(name, run)


def expect_ok(name, path, body, **kw):
    def run():
        st, h, b = request("POST", path, body, **kw)
        assert st == 200, "status %d: %r" % (st, b[:300])
        j = json.loads(b)
        assert j["choices"][0]["finish_reason"] in ("stop", "length"), j
    check(name, run)


CMPL, CHAT = "/v1/completions", "/v1/chat/completions"


def cmpl(**fields):
    body = {"prompt": "Once upon a time", "max_tokens": 2}
    body.update(fields)
    return json.dumps(body)


def chat(**fields):
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    body.update(fields)
    return json.dumps(body)


# ---- malformed JSON ----
for name, raw in [
    ("json: truncated object", '{"prompt": "x",'),
    ("json: empty body", ""),
    ("json: array, not an object", "[1,2]"),
    ("json: a bare string", '"prompt"'),
    ("json: null", "null"),
    ("json: single quotes", "{'prompt': 'x'}"),
    ("json: trailing garbage", '{"prompt":"x"} x'),
    ("json: trailing comma", '{"prompt":"x",}'),
    ("json: duplicate keys", '{"prompt":"x","prompt":"y"}'),
    ("json: NaN literal", '{"prompt":"x","temperature":NaN}'),
    ("json: unquoted key", '{prompt:"x"}'),
    ("json: integer too big", '{"prompt":"x","max_tokens":99999999999999999999}'),
    ("json: lone surrogate escape", '{"prompt":"\\ud800"}'),
    ("json: NUL escape", '{"prompt":"a\\u0000b"}'),
    ("json: nested 100000 deep", '{"a":' + "[" * 100000 + "]" * 100000 + "}"),
]:
    expect_error(name, CMPL, raw, 413 if len(raw) > MAX_BODY else 400,
                 "request_too_large" if len(raw) > MAX_BODY else "invalid_json")
expect_error("json: nested 30000 deep (under the body limit)", CMPL,
             '{"a":' + "[" * 30000 + "]" * 30000 + "}", 400, "invalid_json")
expect_error("json: chat truncated", CHAT, '{"messages":[{"role":"user","content":"x"}', 400,
             "invalid_json")

# ---- invalid UTF-8 inside strings ----
for name, raw in [
    ("utf8: 0xff byte", b'{"prompt":"\xff\xfe"}'),
    ("utf8: overlong slash", b'{"prompt":"\xc0\xaf"}'),
    ("utf8: truncated sequence", b'{"prompt":"ab\xe2\x82"}'),
    ("utf8: encoded surrogate", b'{"prompt":"\xed\xa0\x80"}'),
]:
    expect_error(name, CMPL, raw, 400, "invalid_json")
expect_error("utf8: in a chat message", CHAT,
             b'{"messages":[{"role":"user","content":"caf\xe9"}]}', 400, "invalid_json")
expect_error("utf8: in a stop string", CMPL, b'{"prompt":"x","stop":["\x80"]}', 400,
             "invalid_json")

# ---- wrong types and out-of-range values, field by field ----
for field, value, code in [
    ("prompt", 5, "invalid_type"),
    ("prompt", {"text": "x"}, "invalid_type"),
    ("prompt", ["a", "b"], "invalid_type"),
    ("prompt", None, "invalid_type"),
    ("max_tokens", "3", "invalid_type"),
    ("max_tokens", 2.5, "invalid_type"),
    ("max_tokens", 1e30, "invalid_type"),
    ("max_tokens", 0, "invalid_value"),
    ("max_tokens", -1, "invalid_value"),
    ("max_tokens", -(2 ** 62), "invalid_value"),
    ("max_tokens", 2 ** 62, "context_length_exceeded"),
    ("temperature", "hot", "invalid_type"),
    ("temperature", True, "invalid_type"),
    ("temperature", -0.1, "invalid_value"),
    ("temperature", 2.01, "invalid_value"),
    ("top_p", "all", "invalid_type"),
    ("top_p", 0, "invalid_value"),
    ("top_p", 1.5, "invalid_value"),
    ("seed", "42", "invalid_type"),
    ("seed", 4.2, "invalid_type"),
    ("stop", 5, "invalid_type"),
    ("stop", [1], "invalid_type"),
    ("stop", {"s": "x"}, "invalid_type"),
    ("stop", ["s%d" % i for i in range(9)], "invalid_value"),
    ("stop", "x" * 300, "invalid_value"),
    ("n", 2, "invalid_value"),
    ("n", 0, "invalid_value"),
    ("n", "1", "invalid_type"),
    ("stream", "yes", "invalid_type"),
    ("stream", 1, "invalid_type"),
    ("stream_options", "usage", "invalid_type"),
    ("stream_options", {"include_usage": "yes"}, "invalid_type"),
    ("logprobs", 9, "invalid_value"),
    ("logprobs", -1, "invalid_value"),
    ("logprobs", True, "invalid_type"),
    ("echo", True, "unsupported"),
    ("priority", "high", "invalid_type"),
    ("priority", 1.5, "invalid_type"),
    ("priority", 2 ** 40, "invalid_value"),
    ("deadline_ms", "soon", "invalid_type"),
    ("deadline_ms", -1, "invalid_value"),
    ("ignore_eos", "true", "invalid_type"),
    ("ignore_eos", 1, "invalid_type"),
    ("model", 5, "invalid_type"),
]:
    param = field  # the error names the field (the nested one for stream_options)
    if field == "stream_options" and isinstance(value, dict):
        param = "include_usage"
    if code == "context_length_exceeded":
        param = "max_tokens"
    expect_error("field: %s = %s" % (field, json.dumps(value)[:40]), CMPL, cmpl(**{field: value}),
                 400, code, param)

for name, body, code, param in [
    ("chat: messages missing", json.dumps({"max_tokens": 2}), "missing_field", "messages"),
    ("chat: messages a string", chat(messages="hi"), "invalid_type", "messages"),
    ("chat: messages an object", chat(messages={"role": "user"}), "invalid_type", "messages"),
    ("chat: messages empty", chat(messages=[]), "invalid_value", "messages"),
    ("chat: message a string", chat(messages=["hi"]), "invalid_type", "messages[0].role"),
    ("chat: message without role", chat(messages=[{"content": "x"}]), "invalid_type",
     "messages[0].role"),
    ("chat: role a number", chat(messages=[{"role": 1, "content": "x"}]), "invalid_type",
     "messages[0].role"),
    ("chat: bad role", chat(messages=[{"role": "wizard", "content": "x"}]), "invalid_value",
     "messages[0].role"),
    ("chat: bad role in the 2nd message",
     chat(messages=[{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}]),
     "invalid_value", "messages[1].role"),
    ("chat: content a number", chat(messages=[{"role": "user", "content": 7}]), "invalid_type",
     "messages[0].content"),
    ("chat: content an image part",
     chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
     "invalid_value", "messages[0].content"),
    ("chat: content part without text",
     chat(messages=[{"role": "user", "content": [{"type": "text"}]}]), "invalid_value",
     "messages[0].content"),
    ("chat: logprobs an integer", chat(logprobs=1), "invalid_type", "logprobs"),
    ("chat: top_logprobs without logprobs", chat(top_logprobs=2), "invalid_value",
     "top_logprobs"),
    ("chat: top_logprobs 9", chat(logprobs=True, top_logprobs=9), "invalid_value",
     "top_logprobs"),
    ("chat: max_completion_tokens 0", chat(max_completion_tokens=0, max_tokens=None),
     "invalid_value", "max_completion_tokens"),
    ("chat: temperature 3", chat(temperature=3), "invalid_value", "temperature"),
    ("cmpl: prompt missing", json.dumps({"max_tokens": 2}), "missing_field", "prompt"),
]:
    expect_error(name, CHAT if name.startswith("chat") else CMPL, body, 400, code, param)

# ---- the context limit: 400 with the numbers in the message ----
def prompt_too_long():
    long_prompt = "Once upon a time there was a little girl. " * 40
    st, _, b = request("POST", CMPL, cmpl(prompt=long_prompt))
    e = error_of(st, b, 400, "context_length_exceeded", "prompt")
    nums = [int(x) for x in re.findall(r"\d+", e["message"])]
    assert CTX in nums, e["message"]
    assert any(n > CTX for n in nums), "the prompt's length is not named: " + e["message"]


def max_tokens_too_many():
    st, _, b = request("POST", CMPL, cmpl(max_tokens=CTX))
    e = error_of(st, b, 400, "context_length_exceeded", "max_tokens")
    nums = [int(x) for x in re.findall(r"\d+", e["message"])]
    assert CTX in nums and CTX + 5 in nums, e["message"]  # 5 prompt tokens + CTX


check("context: prompt longer than the context", prompt_too_long)
check("context: prompt + max_tokens over the context", max_tokens_too_many)
expect_error("context: chat prompt longer than the context", CHAT,
             chat(messages=[{"role": "user", "content": "The dog ran. " * 80}]), 400,
             "context_length_exceeded", "prompt")

# ---- accepted oddities: unknown fields, nulls, edge values ----
expect_ok("ok: unknown fields ignored", CMPL,
          cmpl(foo={"bar": [1, 2]}, user="u", frequency_penalty=0.5, logit_bias={}, suffix=None))
expect_ok("ok: unknown message fields ignored", CHAT,
          chat(messages=[{"role": "user", "content": "x", "name": "bob", "extra": 1}],
               tools=[], response_format={"type": "text"}))
expect_ok("ok: null fields mean the default", CMPL,
          cmpl(temperature=None, top_p=None, seed=None, stop=None, n=None, stream=None))
expect_ok("ok: empty prompt (BOS only)", CMPL, cmpl(prompt=""))
expect_ok("ok: prompt as an array of one string", CMPL, cmpl(prompt=["Once"]))
expect_ok("ok: message without content (null)", CHAT, chat(messages=[{"role": "user"}]))
expect_ok("ok: text content parts", CHAT,
          chat(messages=[{"role": "developer", "content": "Be brief."},
                         {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]))
expect_ok("ok: n = 1, boundary temperature and top_p", CMPL, cmpl(n=1, temperature=2, top_p=1))
expect_ok("ok: empty stop strings ignored", CMPL, cmpl(stop=["", ""]))
expect_ok("ok: text/plain content type is not checked", CMPL, cmpl(),
          headers={"Content-Type": "text/plain"})
expect_ok("ok: huge deadline_ms, negative priority", CMPL, cmpl(deadline_ms=1e11, priority=-5))


def chunked_ok():
    body = cmpl().encode()
    st, _, b = request("POST", CMPL, chunks=[body[:7], body[7:20], body[20:]])
    assert st == 200, (st, b[:200])
    assert json.loads(b)["usage"]["completion_tokens"] == 2


check("ok: chunked body", chunked_ok)

# ---- body limits ----
big = cmpl(prompt="a" * (MAX_BODY + 100))
expect_error("413: Content-Length over the limit", CMPL, big, 413, "request_too_large")
expect_error("413: chat body over the limit", CHAT,
             chat(messages=[{"role": "user", "content": "b" * (MAX_BODY * 2)}]), 413,
             "request_too_large")


def chunked_too_large():
    body = big.encode()
    pieces = [body[i:i + 4096] for i in range(0, len(body), 4096)]
    try:
        st, _, b = request("POST", CMPL, chunks=pieces)
    except (BrokenPipeError, ConnectionResetError):
        return  # refused while we were still sending: also fine
    error_of(st, b, 413, "request_too_large")


check("413: chunked body over the limit", chunked_too_large)


def expect_100_continue_refused():
    """Expect: 100-continue with a Content-Length over the limit: 413 before any body is sent."""
    s = socket.create_connection((HOST, PORT), timeout=TIMEOUT_S)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n"
                   "Expect: 100-continue\r\n\r\n" % (CMPL, KEY, MAX_BODY * 10)).encode())
        head = recv_head(s)
        assert head.startswith(b"HTTP/1.1 413"), head[:200]
    finally:
        s.close()


# ---- routes, methods, auth ----
def expect_status(name, method, path, status, code=None, allow=None, auth=True, headers=None,
                  body=None):
    def run():
        st, h, b = request(method, path, body, auth=auth, headers=headers)
        if method == "HEAD":
            assert st == status and b == b"", (st, b)
        elif code is not None:
            error_of(st, b, status, code)
        else:
            assert st == status, (st, b[:200])
        if allow:
            assert h.get("allow") == allow, "Allow: %r" % h.get("allow")
    check(name, run)


expect_status("404: unknown route", "POST", "/v1/nothing", 404, "not_found", body="{}")
expect_status("404: GET unknown route", "GET", "/v2/models", 404, "not_found")
expect_status("404: trailing slash", "POST", "/v1/completions/", 404, "not_found", body="{}")
expect_status("404: unknown model id", "GET", "/v1/models/gpt-4", 404, "model_not_found")
expect_status("405: GET /v1/completions", "GET", CMPL, 405, "method_not_allowed", allow="POST")
expect_status("405: PUT chat", "PUT", CHAT, 405, "method_not_allowed", allow="POST", body="{}")
expect_status("405: DELETE /v1/models", "DELETE", "/v1/models", 405, "method_not_allowed",
              allow="GET, HEAD")
expect_status("405: POST /health", "POST", "/health", 405, "method_not_allowed",
              allow="GET, HEAD", body="{}")
expect_status("405: OPTIONS /v1/completions", "OPTIONS", CMPL, 405, "method_not_allowed",
              allow="POST")
expect_status("ok: HEAD /health", "HEAD", "/health", 200)
expect_status("401: no Authorization", "POST", CMPL, 401, "invalid_api_key", auth=False,
              body=cmpl())
expect_status("401: wrong key", "POST", CMPL, 401, "invalid_api_key", auth=False,
              headers={"Authorization": "Bearer " + KEY + "x"}, body=cmpl())
expect_status("401: key prefix", "POST", CHAT, 401, "invalid_api_key", auth=False,
              headers={"Authorization": "Bearer " + KEY[:-1]}, body=chat())
expect_status("401: Basic scheme", "GET", "/v1/models", 401, "invalid_api_key", auth=False,
              headers={"Authorization": "Basic " + KEY})
expect_status("401: empty bearer", "GET", "/metrics", 401, "invalid_api_key", auth=False,
              headers={"Authorization": "Bearer "})
expect_status("401 before 404 (no route probing)", "GET", "/secret", 401, "invalid_api_key",
              auth=False)
expect_status("ok: /health needs no key", "GET", "/health", 200, auth=False)
expect_status("ok: lower-case bearer scheme", "GET", "/v1/models", 200, auth=False,
              headers={"Authorization": "bearer " + KEY})
check("413: Expect 100-continue over the limit", expect_100_continue_refused)


# ---- raw sockets ----
# the server must close a stalled connection after about CONN_TIMEOUT_S (never much earlier)
SLACK_S = 6 * SLOW


def stalled(partial):
    def run():
        s = socket.create_connection((HOST, PORT), timeout=TIMEOUT_S)
        try:
            s.sendall(partial)
            data, dt = recv_until_closed(s, CONN_TIMEOUT_S + SLACK_S)
            assert dt >= CONN_TIMEOUT_S - 0.6, "closed after only %.2f s" % dt
            assert not data.startswith(b"HTTP/1.1 200"), data[:200]
        finally:
            s.close()
    return run


slowloris = [
    ("slow-loris: headers never finished",
     b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"),
    ("slow-loris: request line only", b"GET /health HT"),
    ("slow-loris: body shorter than Content-Length",
     ("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
      "Content-Length: 100\r\n\r\n{\"prompt\":" % KEY).encode()),
    ("slow-loris: chunked body never terminated",
     ("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"pro\r\n" % KEY).encode()),
    ("slow-loris: connect and send nothing", b""),
]
# run the stalls side by side: each takes CONN_TIMEOUT_S

results = {}


def run_stall(name, partial):
    try:
        stalled(partial)()
        results[name] = None
    except Exception as e:
        results[name] = e


threads = [threading.Thread(target=run_stall, args=c) for c in slowloris]
for t in threads:
    t.start()
for t in threads:
    t.join(CONN_TIMEOUT_S + SLACK_S + 10)
for name, _ in slowloris:
    def report(name=name):
        if name not in results:
            raise AssertionError("did not finish")
        if results[name] is not None:
            raise results[name]
    check(name, report)


def idle_keepalive_closed():
    s = socket.create_connection((HOST, PORT), timeout=TIMEOUT_S)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = recv_head(s)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        data, dt = recv_until_closed(s, CONN_TIMEOUT_S + SLACK_S)
        assert dt >= CONN_TIMEOUT_S - 1.0, "closed after only %.2f s" % dt
    finally:
        s.close()


def pipelined():
    s = socket.create_connection((HOST, PORT), timeout=TIMEOUT_S)
    try:
        body = cmpl().encode()
        one = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" %
               (CMPL, KEY, len(body))).encode() + body
        s.sendall(one + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, _ = recv_until_closed(s, TIMEOUT_S)
        assert data.count(b"HTTP/1.1 200") == 2, data[:600]
        assert b'"text_completion"' in data and b'"status":"ok"' in data, data[:600]
    finally:
        s.close()


def raw_status(name, payload, want):
    def run():
        s = socket.create_connection((HOST, PORT), timeout=TIMEOUT_S)
        try:
            s.sendall(payload)
            data, _ = recv_until_closed(s, TIMEOUT_S)
            if want is None:  # the server just closes
                assert not data.startswith(b"HTTP/1.1 2"), data[:200]
            else:
                assert data.startswith(b"HTTP/1.1 %d" % want), data[:200]
        finally:
            s.close()
    check(name, run)


check("keep-alive: an idle connection is closed", idle_keepalive_closed)
check("keep-alive: two pipelined requests", pipelined)
raw_status("raw: header over the memory limit (431)",
           b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n", 431)
raw_status("raw: garbage request line", b"GARBAGE\r\n\r\n", None)
raw_status("raw: binary junk", bytes(range(256)) * 8, None)
raw_status("raw: bad Content-Length",
           b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400)
raw_status("raw: HTTP/1.0 without Host",
           b"GET /health HTTP/1.0\r\n\r\n", 200)

print("badinput: %d cases passed, %d failed" % (n_ok, len(failures)), flush=True)
sys.exit(1 if failures else 0)

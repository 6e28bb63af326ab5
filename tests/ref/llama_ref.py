#!/usr/bin/python3
"""Independent reference for weft's forward pass: a plain numpy (float64) LLaMA that reads a
GGUF file with its own parser and computes causal logits for a whole token sequence at once
(no KV cache). Compared against weft's prefill + decode logits by tests/test_reference.sh.

usage: llama_ref.py [--tol T] MODEL.gguf WEFT_LOGITS.f32 TOKEN...
Exits 0 when every logit matches to T (default 1e-4) relative error (max |a-b| / max |b| per
row). Quantized weights (Q8_0, Q4_0) are dequantized exactly; weft also quantizes activations
for them, so those runs use a looser T."""
import struct
import sys

import numpy as np

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.o:self.o + n].decode("utf-8", "replace")
        self.o += n
        return s

    def value(self, t):
        if t in GGUF_SCALARS:
            return self.take(GGUF_SCALARS[t])
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError(f"bad gguf type {t}")


def load_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF"
    r.o = 4
    r.take("<I")
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        typ, off = r.take("<I"), r.take("<Q")
        infos.append((name, ne, typ, off))
    align = meta.get("general.alignment", 32)
    base = (r.o + align - 1) // align * align
    tensors = {}
    for name, ne, typ, off in infos:
        count = int(np.prod(ne))
        if typ == 0:
            a = np.frombuffer(data, np.float32, count, base + off)
        elif typ == 1:
            a = np.frombuffer(data, np.float16, count, base + off)
        elif typ == 30:  # BF16: the high half of an f32
            raw = np.frombuffer(data, np.uint16, count, base + off).astype(np.uint32) << 16
            a = raw.view(np.float32)
        elif typ == 8:  # Q8_0: per 32 values, fp16 scale + 32 int8
            blocks = np.frombuffer(data, np.uint8, count // 32 * 34, base + off).reshape(-1, 34)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float64)
            q = blocks[:, 2:].copy().view(np.int8).astype(np.float64)
            a = (d * q).reshape(-1)
        elif typ == 2:  # Q4_0: fp16 scale + 16 bytes; low nibbles = 0..15, high = 16..31
            blocks = np.frombuffer(data, np.uint8, count // 32 * 18, base + off).reshape(-1, 18)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float64)
            qs = blocks[:, 2:]
            q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float64) - 8
            a = (d * q).reshape(-1)
        else:
            raise ValueError(f"reference handles F32/F16 only, tensor {name} has type {typ}")
        tensors[name] = a.astype(np.float64).reshape(list(reversed(ne)))
    return meta, tensors


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, n_heads, hd, theta, scale):
    # x: [T, n_heads*hd]; rotate adjacent pairs (2i, 2i+1) by pos * scale * theta^(-2i/hd)
    T = x.shape[0]
    x = x.reshape(T, n_heads, hd // 2, 2)
    freqs = theta ** (-np.arange(0, hd, 2) / hd)
    ang = np.outer(np.arange(T) * scale, freqs)  # [T, hd/2]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., 0], x[..., 1]
    out = np.stack([a * c - b * s, a * s + b * c], axis=-1)
    return out.reshape(T, n_heads * hd)


def forward(meta, W, tokens):
    A = meta["general.architecture"]
    D = meta[f"{A}.embedding_length"]
    L = meta[f"{A}.block_count"]
    NH = meta[f"{A}.attention.head_count"]
    NKV = meta.get(f"{A}.attention.head_count_kv", NH)
    eps = meta.get(f"{A}.attention.layer_norm_rms_epsilon", 1e-5)
    theta = meta.get(f"{A}.rope.freq_base", 10000.0)
    hd = D // NH
    T = len(tokens)
    x = W["token_embd.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        p = f"blk.{l}."
        h = rmsnorm(x, W[p + "attn_norm.weight"], eps)
        q = rope(h @ W[p + "attn_q.weight"].T, NH, hd, theta, 1.0)
        k = rope(h @ W[p + "attn_k.weight"].T, NKV, hd, theta, 1.0)
        v = h @ W[p + "attn_v.weight"].T
        out = np.zeros((T, NH * hd))
        for hh in range(NH):
            kh = hh // (NH // NKV)
            qs = q[:, hh * hd:(hh + 1) * hd]
            ks = k[:, kh * hd:(kh + 1) * hd]
            vs = v[:, kh * hd:(kh + 1) * hd]
            s = qs @ ks.T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[:, hh * hd:(hh + 1) * hd] = s @ vs
        x = x + out @ W[p + "attn_output.weight"].T
        h = rmsnorm(x, W[p + "ffn_norm.weight"], eps)
        g = h @ W[p + "ffn_gate.weight"].T
        u = h @ W[p + "ffn_up.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ W[p + "ffn_down.weight"].T
    x = rmsnorm(x, W["output_norm.weight"], eps)
    out_w = W.get("output.weight", W["token_embd.weight"])
    return x @ out_w.T


def main():
    args = sys.argv[1:]
    tol = 1e-4
    if args[0] == "--tol":
        tol, args = float(args[1]), args[2:]
    model, got_path, tokens = args[0], args[1], [int(t) for t in args[2:]]
    meta, W = load_gguf(model)
    ref = forward(meta, W, tokens)
    got = np.fromfile(got_path, np.float32).astype(np.float64).reshape(ref.shape)
    err = np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)
    worst = int(err.argmax())
    print(f"reference: {len(tokens)} positions x {ref.shape[1]} logits, max relative error "
          f"{err.max():.3e} (position {worst}), argmax agreement "
          f"{np.mean(got.argmax(1) == ref.argmax(1)) * 100:.1f}%")
    if not np.all(err < tol):
        print(f"FAIL: weft logits differ from the numpy reference by more than {tol:g}")
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()

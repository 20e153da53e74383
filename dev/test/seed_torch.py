"""dev/test/seed_torch.py — the independent PyTorch model of the seed transformer (seed_spec §1) that the Python
tests check the C++ reference against, and their pass/fail counter. Written from the spec, not from the C++.

Parameters are a dict in the project's layout (llmc/config.h): wte [Vp,h], ln1_w [L,h], qkv_w [L,3A,h] as
contiguous [Q|K|V] thirds (head-major), attproj_w [L,h,A], ln2_w [L,h], fc_w [L,2F,h] = [gate|up], fcproj_w [L,h,F],
lnf_w [h]. The math runs in the parameters' dtype.
"""
import sys

import torch
import torch.nn.functional as F

PARAM_NAMES = ["wte", "ln1_w", "qkv_w", "attproj_w", "ln2_w", "fc_w", "fcproj_w", "lnf_w"]


class Checks:
    """Counts checks; summary() prints the "N passed, M failed" line the test runner reads and exits."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, ok, msg):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL", msg)

    def summary(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * w


def rope_cos_sin(S, hd, theta, dtype):
    # Megatron: inv_freq = 1/theta^(arange(0, d, 2)/d) in fp32, angles = positions x inv_freq in fp32, emb = [f, f].
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(S, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1).to(dtype)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def seed_forward(P, inputs, targets, weight, causal, n_head, head_dim, theta=10000.0, eps=1e-5, masks=None,
                 hidden_p=0.0, attn_p=0.0, swap_qk=False, swap_gate=False):
    """Forward of B sequences (inputs, targets [B,S]; weight [B,S]) over all Vp classes. masks: optional 0/1 keep
    arrays drop_emb [B,S,h], drop_attn / drop_mlp [L,B,S,h], drop_prob [L,B,nh,S,S] with their rates.
    swap_qk / swap_gate are deliberate mistakes for the tests' can-it-fail checks. Returns (loss, logits, CE)."""
    B, S = inputs.shape
    L, A = P["ln1_w"].shape[0], n_head * head_dim
    kh, ka = 1.0 / (1.0 - hidden_p), 1.0 / (1.0 - attn_p)
    cos, sin = rope_cos_sin(S, head_dim, theta, P["wte"].dtype)
    x = F.embedding(inputs, P["wte"])
    if masks is not None:
        x = x * masks["drop_emb"] * kh
    for l in range(L):
        a = rmsnorm(x, P["ln1_w"][l], eps)
        q, k, v = [t.view(B, S, n_head, head_dim).transpose(1, 2) for t in F.linear(a, P["qkv_w"][l]).split(A, -1)]
        if swap_qk:
            q, k = k, q
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        scores = q @ k.transpose(-1, -2) / (head_dim ** 0.5)
        if causal:
            scores = scores.masked_fill(torch.triu(torch.ones(S, S, dtype=torch.bool), diagonal=1), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        if masks is not None:
            probs = probs * masks["drop_prob"][l] * ka
        y = F.linear((probs @ v).transpose(1, 2).reshape(B, S, A), P["attproj_w"][l])
        x = x + (y * masks["drop_attn"][l] * kh if masks is not None else y)
        gate, up = F.linear(rmsnorm(x, P["ln2_w"][l], eps), P["fc_w"][l]).chunk(2, dim=-1)
        if swap_gate:
            gate, up = up, gate
        z = F.linear(F.silu(gate) * up, P["fcproj_w"][l])
        x = x + (z * masks["drop_mlp"][l] * kh if masks is not None else z)
    logits = F.linear(rmsnorm(x, P["lnf_w"], eps), P["wte"]).reshape(B * S, -1)  # tied head over all Vp classes
    ce = F.cross_entropy(logits, targets.reshape(-1), reduction="none")
    return (ce * weight.reshape(-1)).sum(), logits, ce

#!/usr/bin/python3
"""dev/test/test_torch_crosscheck.py — an independent PyTorch implementation of the seed transformer (written from
seed_spec §1-3 with torch.nn.functional ops and autograd, in float64), fed the weights, token batch, MDM masks and
dropout masks that the C++ reference used (build/test_torch_dump --dump FILE), and compared with the reference's
fp32 logits, losses, every gradient and the grad norm, for the AR and the MDM objective; and the parameters after
one optimizer step, computed by torch.nn.utils.clip_grad_norm_ + torch.optim.AdamW from the C++ gradients.

Tolerance: max|cpp - torch| / max|torch| <= 1e-5 per tensor. The C++ side computes in fp32 (unit roundoff 6e-8)
through ~15 dependent operations and sums of up to 50304 terms, which bounds its error to ~1e-6 of each tensor's
scale; a modelling mistake (a wrong mask, scale, sign, gain or layout) moves results by >= 1e-4. The one exception
is the AdamW update itself (param_after - param): the C++ parameters are stored in fp32, so the update (~lr = 1e-3)
carries the rounding of parameters up to ~0.5, ~3e-8 absolute = 3e-5 of the update: held to 1e-4.
The script ends with sensitivity checks showing that a perturbed weight or a flipped dropout bit is detected.

Run from the repository root after `make` (uses ./build/test_torch_dump). Prints "N passed, M failed".
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed_torch import PARAM_NAMES, Checks, seed_forward  # noqa: E402  the independent PyTorch model

TOL = 1e-5
TOL_UPDATE = 1e-4
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMP_BIN = os.path.join(REPO, "build", "test_torch_dump")
DECAY = {"wte", "qkv_w", "attproj_w", "fc_w", "fcproj_w"}  # 2-D weights; RMSNorm gains get no weight decay

check = Checks()


def load_dump(path):
    dtypes = {0: np.float32, 1: np.float64, 2: np.int32, 3: np.uint8}
    out = {}
    with open(path, "rb") as f:
        buf = f.read()
    assert buf[:8] == b"LLMCDMP1", "bad dump magic"
    pos = 8
    while pos < len(buf):
        (n,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        name = buf[pos:pos + n].decode()
        pos += n
        dt, ndim = struct.unpack_from("<II", buf, pos)
        pos += 8
        shape = struct.unpack_from("<%dQ" % ndim, buf, pos)
        pos += 8 * ndim
        dtype = np.dtype(dtypes[dt])
        count = int(np.prod(shape)) if ndim else 1
        out[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=pos).reshape(shape).copy()
        pos += count * dtype.itemsize
    return out


class Cfg:
    def __init__(self, d):
        ci = d["config_int"]
        cf = d["config_float"]
        (self.vocab, self.Vp, self.mask_id, self.h, self.L, self.nh, self.hd, self.F, self.S, self.B) = [int(x) for x in ci]
        (self.theta, self.rms_eps, self.hidden_p, self.attn_p, self.lr, self.beta1, self.beta2, self.adam_eps,
         self.wd, self.clip, self.mdm_eps) = [float(x) for x in cf]
        self.A = self.nh * self.hd

    def shapes(self):
        h, L, A, F_ = self.h, self.L, self.A, self.F
        return {"wte": (self.Vp, h), "ln1_w": (L, h), "qkv_w": (L, 3 * A, h), "attproj_w": (L, h, A),
                "ln2_w": (L, h), "fc_w": (L, 2 * F_, h), "fcproj_w": (L, h, F_), "lnf_w": (h,)}


def objective_batch(cfg, d, name, mdm_without_p=False):
    """Inputs, targets and row weights built from the raw tokens y (and, for MDM, the dumped mask and p)."""
    y = torch.from_numpy(d["y"].astype(np.int64))
    B, S = cfg.B, cfg.S
    if name == "ar":  # inputs y[:, :S], targets y[:, 1:], token mean
        return y[:, :S], y[:, 1:], torch.full((B, S), 1.0 / (B * S), dtype=torch.float64)
    x = y[:, :S]
    m = torch.from_numpy(d["mdm/mdm_mask"].astype(bool))
    p = torch.from_numpy(d["mdm/mdm_p"].astype(np.float64)).view(B, 1)
    inputs = torch.where(m, torch.full_like(x, cfg.mask_id), x)
    if mdm_without_p:  # sensitivity check only
        p = torch.ones_like(p)
    weight = m.double() / (p * B * S)  # loss = sum over masked tokens of CE / p_b, over B*S
    return inputs, x, weight


def run_torch(cfg, d, name, params0, perturb=None, flip_prob=False, causal=None, mdm_without_p=False, wd=None,
              clip=None):
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params0.items()}
    if perturb is not None:
        with torch.no_grad():
            P[perturb[0]].view(-1)[perturb[1]] *= 1.0 + perturb[2]
    masks = {k: torch.from_numpy(d[name + "/" + k].astype(np.float64)) for k in
             ["drop_emb", "drop_attn", "drop_mlp", "drop_prob"]}
    if flip_prob:
        masks["drop_prob"] = masks["drop_prob"].clone()
        masks["drop_prob"][0, 0, 0, 5, 3] = 1.0 - masks["drop_prob"][0, 0, 0, 5, 3]
    inputs, targets, weight = objective_batch(cfg, d, name, mdm_without_p)
    if causal is None:
        causal = name == "ar"
    loss, logits, ce = seed_forward(P, inputs, targets, weight, causal, cfg.nh, cfg.hd, cfg.theta, cfg.rms_eps, masks,
                                    cfg.hidden_p, cfg.attn_p)
    loss.backward()
    out = {"loss": loss.item(), "logits": logits.detach(), "row_loss": ce.detach()}
    for k in PARAM_NAMES:
        out["grad/" + k] = P[k].grad.detach().clone()
    out["grad_norm"] = torch.cat([P[k].grad.reshape(-1) for k in PARAM_NAMES]).norm().item()

    # The optimizer step is checked on the C++ gradients (identical inputs), so that it is not confused with the
    # gradient check above: Adam's first step is ~lr*sign(g), and an element whose exact gradient is ~0 can take
    # either sign at fp32 precision.
    Q = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params0.items()}
    for k in PARAM_NAMES:
        Q[k].grad = torch.from_numpy(d[name + "/grad/" + k].astype(np.float64)).reshape(Q[k].shape)
    torch.nn.utils.clip_grad_norm_([Q[k] for k in PARAM_NAMES], cfg.clip if clip is None else clip)
    decay = cfg.wd if wd is None else wd
    opt = torch.optim.AdamW([{"params": [Q[k] for k in PARAM_NAMES if k in DECAY], "weight_decay": decay},
                             {"params": [Q[k] for k in PARAM_NAMES if k not in DECAY], "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps)
    opt.step()
    for k in PARAM_NAMES:
        out["param_after/" + k] = Q[k].detach().clone()
    return out


def max_rel(a, b):
    a = torch.as_tensor(np.asarray(a, dtype=np.float64)).reshape(-1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def compare(cfg, d, name, t, params0, verbose=True):
    """Returns [(tensor, max relative error, tolerance)] of the C++ outputs against torch's."""
    shapes = cfg.shapes()
    rows = [("logits", max_rel(d[name + "/logits"], t["logits"]), TOL),
            ("row_loss", max_rel(d[name + "/row_loss"], t["row_loss"]), TOL),
            ("loss", max_rel(d[name + "/loss"], torch.tensor([t["loss"]])), TOL),
            ("grad_norm", max_rel(d[name + "/grad_norm"], torch.tensor([t["grad_norm"]])), TOL)]
    for k in PARAM_NAMES:
        rows.append(("grad/" + k, max_rel(d[name + "/grad/" + k].reshape(shapes[k]), t["grad/" + k]), TOL))
    for k in PARAM_NAMES:
        after = d[name + "/param_after/" + k].reshape(shapes[k]).astype(np.float64)
        rows.append(("param_after/" + k, max_rel(after, t["param_after/" + k]), TOL))
        rows.append(("update/" + k, max_rel(after - params0[k], t["param_after/" + k] - torch.from_numpy(params0[k])),
                     TOL_UPDATE))
    if verbose:
        for tensor, err, tol in rows:
            print("  %-4s %-22s max rel err %.3e (tol %.0e)" % (name, tensor, err, tol))
    return rows


def main():
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if not os.path.exists(DUMP_BIN):
        print("error: %s not found: run `make` first" % DUMP_BIN)
        print("0 passed, 1 failed")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ref_dump.bin")
        r = subprocess.run([DUMP_BIN, "--dump", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(r.stdout.strip())
        if r.returncode != 0:
            print("error: %s --dump failed" % DUMP_BIN)
            print("0 passed, 1 failed")
            return 1
        d = load_dump(path)
    cfg = Cfg(d)
    shapes = cfg.shapes()
    params0 = {k: d["param/" + k].astype(np.float64).reshape(shapes[k]) for k in PARAM_NAMES}
    print("config: vocab %d, padded %d, mask id %d, h %d, L %d, heads %dx%d, ffn %d, S %d, B %d" %
          (cfg.vocab, cfg.Vp, cfg.mask_id, cfg.h, cfg.L, cfg.nh, cfg.hd, cfg.F, cfg.S, cfg.B))
    results = {}
    for name in ["ar", "mdm"]:
        t = run_torch(cfg, d, name, params0)
        results[name] = t
        print("%s: loss C++ %.9f torch %.9f, grad norm C++ %.6f torch %.6f" %
              (name, float(d[name + "/loss"][0]), t["loss"], float(d[name + "/grad_norm"][0]), t["grad_norm"]))
        for tensor, err, tol in compare(cfg, d, name, t, params0):
            check(err <= tol, "%s %s: max rel err %.3e > %.0e" % (name, tensor, err, tol))
    check(float(d["ar/grad_norm"][0]) > cfg.clip and float(d["mdm/grad_norm"][0]) > cfg.clip,
          "gradient clipping must be active in this check (grad norms above %.1f)" % cfg.clip)

    # Sensitivity: each of these deliberate mistakes on the torch side must make the comparison fail.
    def worst(name, **kw):
        rows = compare(cfg, d, name, run_torch(cfg, d, name, params0, **kw), params0, verbose=False)
        return max(err / tol for _, err, tol in rows)
    for desc, name, kw in [("weight qkv_w[0] * (1 + 1e-2)", "ar", {"perturb": ("qkv_w", 0, 1e-2)}),
                           ("weight lnf_w[3] * (1 + 1e-3)", "mdm", {"perturb": ("lnf_w", 3, 1e-3)}),
                           ("one attention-dropout bit flipped", "ar", {"flip_prob": True}),
                           ("MDM run with causal attention", "mdm", {"causal": True}),
                           ("MDM loss without the 1/p weights", "mdm", {"mdm_without_p": True}),
                           ("AdamW without weight decay", "ar", {"wd": 0.0}),
                           ("no gradient clipping", "ar", {"clip": 1e9})]:
        w = worst(name, **kw)
        print("sensitivity: %-36s -> worst err/tol %.1f" % (desc, w))
        check(w > 1.0, "sensitivity: %s was not detected (worst err/tol %.2f)" % (desc, w))

    check.summary()


if __name__ == "__main__":
    sys.exit(main())

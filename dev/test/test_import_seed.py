#!/usr/bin/python3
"""dev/test/test_import_seed.py — tests scripts/import_seed_checkpoint.py on a SYNTHETIC seed checkpoint: DeepSpeed
pipeline layer files with the seed's key names and the "tiny" preset's shapes (real 50304-row vocab), bf16 random
tensors like the seed's. Checks that
  (a) every tensor lands at its place in the project's parameter buffer (layout written here from llmc/config.h's
      comments, not taken from the converter), the header fields are right, and a Megatron non-pipeline file with
      the same tensors converts to the same parameters;
  (b) the loss of the converted model computed by the C++ CPU reference (build/test_ckpt_loss) equals, within 1e-5
      relative, the loss of an independent fp32 PyTorch model (written here from seed_spec §1) built from the
      synthetic tensors, for AR (causal) and MDM (bidirectional, masked inputs); a PyTorch model with Q and K
      swapped or gate and up swapped is shown to differ, so the comparison can fail;
  (c) broken inputs (a missing layer file, a wrong shape, an unexpected key, a wrong preset) end in one
      "error: ..." line and exit status 1.
Run from the repository root after `make` (builds build/test_ckpt_loss if missing). Prints "N passed, M failed".
"""
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed_torch import Checks, seed_forward  # noqa: E402  the independent PyTorch model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "import_seed_checkpoint.py")
LOSS_BIN = os.path.join(REPO, "build", "test_ckpt_loss")
TOL = 1e-5
# The "tiny" preset (llmc/config.h) with the seed's vocabulary: h 64, 2 layers, 4 heads x 16, FFN floor(64/24)*64.
VP, H, L, NH, HD, FFN = 50304, 64, 2, 4, 16, 128
A = NH * HD
MASK_ID, V = 50257, 50257

check = Checks()


def load_converter():
    spec = importlib.util.spec_from_file_location("import_seed_checkpoint", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def synthetic_tensors(seed=0):
    """Lively random weights (logits of O(1..10)) so that any misplaced tensor changes the loss visibly."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std):
        return (torch.randn(*shape, generator=g) * std).to(torch.bfloat16)

    def gain():
        return (1 + 0.2 * torch.randn(H, generator=g)).to(torch.bfloat16)

    layers = [{
        "input_layernorm.weight": gain(),
        "self_attention.query_key_value.weight": rnd(3 * A, H, std=H ** -0.5 * 2),
        "self_attention.dense.weight": rnd(H, A, std=A ** -0.5),
        "post_attention_layernorm.weight": gain(),
        "mlp.dense_h_to_4h.weight": rnd(2 * FFN, H, std=H ** -0.5 * 2),
        "mlp.dense_4h_to_h.weight": rnd(H, FFN, std=FFN ** -0.5),
    } for _ in range(L)]
    return {"wte": rnd(VP, H, std=0.5), "layers": layers, "lnf": gain()}


def write_pipeline(root, T, step=1234):
    """DeepSpeed PipelineModule layout with gaps for parameter-free specs and a tied-logits copy of the embedding."""
    d = os.path.join(root, f"global_step{step}")
    os.makedirs(d)
    with open(os.path.join(root, "latest"), "w") as f:
        f.write(f"global_step{step}")
    path = lambda i: os.path.join(d, f"layer_{i:02d}-model_00-model_states.pt")  # noqa: E731
    torch.save({"word_embeddings.weight": T["wte"]}, path(1))
    for l in range(L):
        torch.save(dict(T["layers"][l]), path(3 + l))
    torch.save({"weight": T["lnf"]}, path(3 + L + 1))
    torch.save({"word_embeddings.weight": T["wte"].clone()}, path(3 + L + 2))
    torch.save({"module": None, "global_steps": step}, os.path.join(d, "mp_rank_00_model_states.pt"))  # ignored
    return d


def write_megatron(root, T, iteration=1234):
    d = os.path.join(root, f"iter_{iteration:07d}", "mp_rank_00")
    os.makedirs(d)
    enc = {f"layers.{l}.{k}": v for l in range(L) for k, v in T["layers"][l].items()}
    enc["final_layernorm.weight"] = T["lnf"]
    lm = {"embedding": {"word_embeddings": {"weight": T["wte"]}}, "encoder": enc}
    torch.save({"iteration": iteration, "model": {"language_model": lm}}, os.path.join(d, "model_optim_rng.pt"))
    with open(os.path.join(root, "latest_checkpointed_iteration.txt"), "w") as f:
        f.write(str(iteration))


def read_project_checkpoint(path):
    """Parses llmc/checkpoint.h's header field by field (offsets from the struct declaration) and the params."""
    buf = open(path, "rb").read()
    hdr = {"magic": buf[0:8]}
    names = ["version", "objective"]
    hdr.update(zip(names, struct.unpack_from("<2I", buf, 8)))
    shape = ["vocab_size", "padded_vocab", "mask_id", "d_model", "n_layer", "n_head", "head_dim", "ffn", "seq_len"]
    hdr.update(zip(shape, struct.unpack_from("<9i", buf, 16)))
    hdr["rope_theta"], hdr["rms_eps"] = struct.unpack_from("<2f", buf, 52)
    hdr["seed"], hdr["has_optimizer"], _ = struct.unpack_from("<3I", buf, 60)
    hdr["step"], hdr["consumed"], hdr["fingerprint"], hdr["num_params"] = struct.unpack_from("<qqQQ", buf, 72)
    hdr["best_val_loss"], hdr["best_val_step"], hdr["checksum"] = struct.unpack_from("<dqQ", buf, 104)
    params = np.frombuffer(buf, dtype="<f4", offset=192)
    return hdr, params


def expected_buffer(T):
    """The project layout: wte [Vp,h], ln1 [L,h], qkv [L,3A,h], attproj [L,h,A], ln2 [L,h], fc [L,2F,h],
    fcproj [L,h,F], lnf [h], every tensor copied unchanged (the seed's QKV thirds and [gate|up] are the project's)."""
    keys = ["input_layernorm.weight", "self_attention.query_key_value.weight", "self_attention.dense.weight",
            "post_attention_layernorm.weight", "mlp.dense_h_to_4h.weight", "mlp.dense_4h_to_h.weight"]
    parts = [T["wte"]] + [T["layers"][l][k] for k in keys for l in range(L)] + [T["lnf"]]
    return torch.cat([p.float().reshape(-1) for p in parts]).numpy()


# ---- the independent PyTorch model (dev/test/seed_torch.py), fp32, fed from the SEED's key names ------------

SEED_KEYS = {"ln1_w": "input_layernorm.weight", "qkv_w": "self_attention.query_key_value.weight",
             "attproj_w": "self_attention.dense.weight", "ln2_w": "post_attention_layernorm.weight",
             "fc_w": "mlp.dense_h_to_4h.weight", "fcproj_w": "mlp.dense_4h_to_h.weight"}


def torch_loss(T, inputs, targets, weight, causal, swap_qk=False, swap_gate=False):
    P = {k: torch.stack([lay[key].float() for lay in T["layers"]]) for k, key in SEED_KEYS.items()}
    P["wte"], P["lnf_w"] = T["wte"].float(), T["lnf"].float()
    _, _, ce = seed_forward(P, inputs, targets, weight, causal, NH, HD, swap_qk=swap_qk, swap_gate=swap_gate)
    return float((ce.double() * weight.reshape(-1).double()).sum())


def make_batch(objective, B=2, S=16, seed=5):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, V, (B, S + 1), generator=g)
    y[0, 4] = 50256  # end-of-text is an ordinary token
    if objective == "ar":
        return y[:, :S].clone(), y[:, 1:].clone(), torch.full((B, S), 1.0 / (B * S))
    p = torch.tensor([0.3, 0.7])[:, None]
    masked = torch.rand(B, S, generator=g) < p
    masked[:, 0] = True  # at least one masked token per row
    x = y[:, :S]
    inputs = torch.where(masked, torch.full_like(x, MASK_ID), x)
    weight = torch.where(masked, 1.0 / (p * B * S), torch.zeros(B, S))
    return inputs, x.clone(), weight.float()


def write_batch(path, inputs, targets, weight):
    B, S = inputs.shape
    with open(path, "wb") as f:
        f.write(b"LLMCBAT1" + struct.pack("<2i", B, S))
        f.write(inputs.numpy().astype("<i4").tobytes() + targets.numpy().astype("<i4").tobytes())
        f.write(weight.numpy().astype("<f4").tobytes())


def cpp_loss(ckpt, batch):
    r = subprocess.run([LOSS_BIN, "--ckpt", ckpt, "--batch", batch], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.startswith("loss "):
        print(r.stdout, r.stderr)
        return float("nan")
    return float(r.stdout.split()[1])


def run_cli(args):
    r = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def expect_error(conv, args, needle, what):
    try:
        conv.convert(args)
        check(False, f"{what}: converted without error")
    except conv.ConvertError as e:
        msg = str(e)
        check(needle in msg and "\n" not in msg, f"{what}: message '{msg}' lacks '{needle}'")


def main():
    if not os.path.exists(LOSS_BIN):
        subprocess.run(["make", "-s", "-C", REPO, "build/test_ckpt_loss"], check=False)
    conv = load_converter()
    tmp = tempfile.mkdtemp(prefix="test_import_seed_")
    try:
        T = synthetic_tensors()
        root = os.path.join(tmp, "seed")
        step_dir = write_pipeline(root, T)
        want = expected_buffer(T)

        # (a) the CLI on the save directory (follows `latest`); preset inferred from the shapes.
        out = {o: os.path.join(tmp, f"{o}.bin") for o in ("ar", "mdm")}
        rc, so, se = run_cli([root, "--objective", "ar", "--out", out["ar"], "--seq-len", "256"])
        check(rc == 0 and os.path.exists(out["ar"]), f"CLI conversion failed: {se.strip()}")
        check("tiny" in se, f"the shape should be recognised as the tiny preset: '{se.strip()}'")
        conv.convert([step_dir, "--objective", "mdm", "--out", out["mdm"], "--model", "tiny", "--seq-len", "256"])
        check(not os.path.exists(out["ar"] + ".tmp"), "temporary file left behind")
        for obj, code in (("ar", 0), ("mdm", 1)):
            hdr, params = read_project_checkpoint(out[obj])
            fields = dict(magic=b"LLMCDMCK", version=1, objective=code, vocab_size=V, padded_vocab=VP, mask_id=MASK_ID,
                          d_model=H, n_layer=L, n_head=NH, head_dim=HD, ffn=FFN, seq_len=256, has_optimizer=0,
                          step=1234, num_params=want.size, best_val_step=-1)
            bad = {k: (hdr[k], v) for k, v in fields.items() if hdr[k] != v}
            check(not bad, f"{obj}: header fields (got, want): {bad}")
            check(abs(hdr["rope_theta"] - 1e4) < 1e-3 and abs(hdr["rms_eps"] - 1e-5) < 1e-12 and
                  hdr["best_val_loss"] == float("inf"), f"{obj}: theta/eps/best {hdr}")
            check(params.size == want.size and np.array_equal(params, want),
                  f"{obj}: parameter buffer differs from the synthetic tensors "
                  f"({int((params != want).sum()) if params.size == want.size else 'size'} elements)")
        # Spot checks by index, independent of expected_buffer's concatenation: layer 1's K of head 2, and its up half.
        _, params = read_project_checkpoint(out["ar"])
        off_qkv = VP * H + L * H + 1 * 3 * A * H
        row = A + 2 * HD  # K third starts at row A; head 2 of it at 2*HD
        k_head2 = params[off_qkv + row * H: off_qkv + (row + HD) * H].reshape(HD, H)
        check(np.array_equal(k_head2, T["layers"][1]["self_attention.query_key_value.weight"][row:row + HD].float().numpy()),
              "layer 1 K head 2 misplaced")
        off_fc = VP * H + 2 * L * H + L * 3 * A * H + L * H * A + 1 * 2 * FFN * H
        up = params[off_fc + FFN * H: off_fc + 2 * FFN * H].reshape(FFN, H)
        check(np.array_equal(up, T["layers"][1]["mlp.dense_h_to_4h.weight"][FFN:].float().numpy()), "layer 1 up half misplaced")

        # A Megatron non-pipeline checkpoint of the same tensors gives the same parameters and step.
        mroot = os.path.join(tmp, "megatron")
        write_megatron(mroot, T)
        mout = os.path.join(tmp, "megatron.bin")
        conv.convert([mroot, "--objective", "ar", "--out", mout, "--model", "tiny", "--seq-len", "256"])
        check(open(mout, "rb").read() == open(out["ar"], "rb").read(), "non-pipeline conversion differs from pipeline")

        # (b) C++ reference loss of the converted file == PyTorch loss from the synthetic tensors.
        for obj in ("ar", "mdm"):
            inputs, targets, weight = make_batch(obj)
            bpath = os.path.join(tmp, f"batch_{obj}.bin")
            write_batch(bpath, inputs, targets, weight)
            ref = torch_loss(T, inputs, targets, weight, causal=(obj == "ar"))
            got = cpp_loss(out[obj], bpath)
            rel = abs(got - ref) / abs(ref)
            check(rel <= TOL, f"{obj}: C++ loss {got:.9g} vs PyTorch {ref:.9g} (rel {rel:.2e})")
            wrong = {"causal flipped": torch_loss(T, inputs, targets, weight, causal=(obj != "ar")),
                     "Q/K swapped": torch_loss(T, inputs, targets, weight, obj == "ar", swap_qk=True),
                     "gate/up swapped": torch_loss(T, inputs, targets, weight, obj == "ar", swap_gate=True)}
            for name, w in wrong.items():
                check(abs(w - ref) / abs(ref) > 100 * TOL, f"{obj}: {name} changes the loss only by "
                      f"{abs(w - ref) / abs(ref):.2e}: the comparison could not fail")
            print(f"{obj}: C++ reference loss {got:.9f}, PyTorch {ref:.9f}, rel diff {rel:.2e}; "
                  + ", ".join(f"{k} {v:.4f}" for k, v in wrong.items()))

        # (c) broken inputs: one error line each.
        bad_root = os.path.join(tmp, "bad")
        shutil.copytree(step_dir, os.path.join(bad_root, "global_step7"))
        bad_dir = os.path.join(bad_root, "global_step7")
        args = [bad_dir, "--objective", "ar", "--out", os.path.join(tmp, "bad.bin")]
        os.rename(os.path.join(bad_dir, "layer_03-model_00-model_states.pt"), os.path.join(tmp, "moved.pt"))
        expect_error(conv, args + ["--model", "tiny"], "n_layer 1", "missing first layer file")
        os.rename(os.path.join(tmp, "moved.pt"), os.path.join(bad_dir, "layer_03-model_00-model_states.pt"))
        shutil.copy(os.path.join(bad_dir, "layer_04-model_00-model_states.pt"),
                    os.path.join(bad_dir, "layer_05-model_00-model_states.pt"))
        os.remove(os.path.join(bad_dir, "layer_04-model_00-model_states.pt"))
        expect_error(conv, args, "missing layer file", "gap between transformer layers")
        os.rename(os.path.join(bad_dir, "layer_05-model_00-model_states.pt"),
                  os.path.join(bad_dir, "layer_04-model_00-model_states.pt"))
        lay = dict(T["layers"][1])
        lay["mlp.dense_4h_to_h.weight"] = lay["mlp.dense_4h_to_h.weight"][:, :FFN - 64]
        torch.save(lay, os.path.join(bad_dir, "layer_04-model_00-model_states.pt"))
        expect_error(conv, args, "layer 1: mlp.dense_4h_to_h.weight has shape [64, 64], want [64, 128]", "wrong shape")
        lay = dict(T["layers"][1])
        lay["self_attention.query_key_value.bias"] = torch.zeros(3 * A)
        torch.save(lay, os.path.join(bad_dir, "layer_04-model_00-model_states.pt"))
        expect_error(conv, args, "unexpected keys", "unexpected bias")
        torch.save(dict(T["layers"][1]), os.path.join(bad_dir, "layer_04-model_00-model_states.pt"))
        expect_error(conv, args + ["--model", "140m"], "d_model 64, model 140m has 768", "wrong preset")
        with open(os.path.join(bad_dir, "layer_04-model_00-model_states.pt"), "r+b") as f:
            f.truncate(100)
        expect_error(conv, args, "cannot read", "truncated layer file")
        torch.save(dict(T["layers"][1]), os.path.join(bad_dir, "layer_04-model_00-model_states.pt"))
        os.remove(os.path.join(bad_dir, f"layer_{3 + L + 1:02d}-model_00-model_states.pt"))
        expect_error(conv, args, "final norm is missing", "missing final norm")
        check(not os.path.exists(os.path.join(tmp, "bad.bin")), "a failed conversion left an output file")
        rc, so, se = run_cli([os.path.join(tmp, "nowhere"), "--objective", "ar", "--out", os.path.join(tmp, "x.bin")])
        check(rc == 1 and se.count("\n") == 1 and se.startswith("error: ") and "does not exist" in se,
              f"CLI on a missing input: exit {rc}, stderr {se!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    check.summary()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""scripts/import_seed_checkpoint.py — converts a checkpoint of the seed (the Megatron-DeepSpeed fork of
seed_spec.md, e.g. the released best 100M-token AR 140M / MDM 425M models) into this project's checkpoint format
(llmc/checkpoint.h), so train_gpt / train_mdm / the CPU reference can evaluate the paper's models.

    python3 scripts/import_seed_checkpoint.py SEED_CKPT --objective ar|mdm --out model.bin [--model 140m]

SEED_CKPT is one of
  * a DeepSpeed pipeline checkpoint (what the seed's quickstart writes, seed_spec §0): the save directory holding
    a `latest` file, or one `global_stepN/` directory with `layer_XX-model_00-model_states.pt` files;
  * a Megatron non-pipeline checkpoint: `mp_rank_00/model_optim_rng.pt` (or its `iter_N/` directory, or a save
    directory with `latest_checkpointed_iteration.txt`), or a DeepSpeed `mp_rank_00_model_states.pt` whose
    `module` holds the whole model.
The output has fp32 parameters (the seed's layer files hold the bf16 model weights; the fp32 master copy lives in
the optimizer shards, which are not read), no optimizer state, step = N of the directory name (or the file's
`iteration`), and the project's defaults for everything the weights do not fix (vocab 50257, mask id 50257,
seq_len 2048, RoPE theta 1e4, RMSNorm eps 1e-5: seed_spec §1.3-1.7). It is written to OUT.tmp and renamed.

Model shape: d_model, padded vocab, n_layer, attention dim n*d and FFN are read from the tensor shapes; the split
of n*d into heads is not visible in the weights, so it comes from --model PRESET (llmc/config.h's table), from
--n-head / --head-dim, or, failing both, from the unique preset with these shapes. Every tensor's shape is checked;
anything unexpected ends in one line "error: ..." and exit status 1.

Layout facts used (seed_spec §1): fused QKV weight [3nd, h] whose output is contiguous [Q | K | V] thirds, each
head-major (this fork, unlike upstream Megatron's per-head interleave) — identical to the project's P_QKV, so it is
copied unchanged; MLP up weight [2F, h] = [gate | up] — identical to P_FC; all weights [out, in]; tied embedding.

Facts about the seed's files that are ASSUMPTIONS (UNCONFIRMED: no released file was inspected):
  * layer-file naming `layer_{idx:02d}-model_{tp:02d}-model_states.pt` and one file per LayerSpec that has
    parameters, idx = position in the pipe's spec list (parameter-free specs leave gaps; the first file may be
    layer_00 or layer_01). Files are therefore classified by their keys, not by their index.
  * keys: embedding file `word_embeddings.weight`; transformer-layer file `input_layernorm.weight`,
    `self_attention.query_key_value.weight`, `self_attention.dense.weight`, `post_attention_layernorm.weight`,
    `mlp.dense_h_to_4h.weight`, `mlp.dense_4h_to_h.weight`; final RMSNorm file `weight`. A second embedding file
    (the tied logits spec), if present, must equal the first.
  * non-pipeline nesting `model` -> `language_model` -> `embedding` -> `word_embeddings` -> `weight`,
    `encoder` (or `transformer`) -> `layers.N.<key as above>` and `final_layernorm.weight`; nested dicts and
    dotted keys are both accepted.
Only tensor-parallel size 1 (the seed's setting) is supported. Needs PyTorch (any version able to read the files).
"""
import argparse
import os
import pickle
import re
import struct
import sys
import types

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LAYER_KEYS = {  # seed key in a transformer layer -> project tensor name (llmc/config.h)
    "input_layernorm.weight": "ln1_w",
    "self_attention.query_key_value.weight": "qkv_w",
    "self_attention.dense.weight": "attproj_w",
    "post_attention_layernorm.weight": "ln2_w",
    "mlp.dense_h_to_4h.weight": "fc_w",
    "mlp.dense_4h_to_h.weight": "fcproj_w",
}
PARAM_ORDER = ["wte", "ln1_w", "qkv_w", "attproj_w", "ln2_w", "fc_w", "fcproj_w", "lnf_w"]  # ParamTensor order
IGNORED_SUFFIXES = ("inv_freq", "_extra_state")  # recomputed buffers / TE metadata, not weights

# llmc/checkpoint.h CheckpointHeader, packed little-endian: magic, version, objective, 9 x int32 shape,
# rope_theta, rms_eps, seed, has_optimizer, reserved0, step, consumed_samples, sampler_fingerprint, num_params,
# best_val_loss, best_val_step, payload_checksum, reserved[64].
HEADER = struct.Struct("<8sII9i2fIIIqqQQdqQ64s")
assert HEADER.size == 192
CKPT_MAGIC, CKPT_VERSION = b"LLMCDMCK", 1
OBJECTIVES = {"ar": 0, "mdm": 1}


class ConvertError(Exception):
    """A problem with the input; main() prints it as one `error: ...` line."""


def fnv1a(data, h=1469598103934665603):
    # 64-bit FNV-1a over bytes. Masking every 8 bytes is exact: the low 64 bits of x*P and x^b depend only on
    # the low 64 bits of x, and the larger intermediate ints cost less than masking every byte.
    m, p = (1 << 64) - 1, 1099511628211
    mv = memoryview(data).cast("B")
    n8 = len(mv) // 8 * 8
    it = iter(mv[:n8])
    for a, b, c, d, e, f, g, k in zip(it, it, it, it, it, it, it, it):
        h = ((((((((((((((((h ^ a) * p) ^ b) * p) ^ c) * p) ^ d) * p) ^ e) * p) ^ f) * p) ^ g) * p) ^ k) * p) & m
    for a in mv[n8:]:
        h = ((h ^ a) * p) & m
    return h


def read_presets():
    """The size table of llmc/config.h: name -> (d_model, n_head, head_dim, n_layer)."""
    path = os.path.join(REPO, "llmc", "config.h")
    try:
        text = open(path).read()
    except OSError:
        return {}
    rows = re.findall(r'\{"(\w+)",\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\}', text)
    return {r[0]: (int(r[1]), int(r[4]), int(r[3]), int(r[5])) for r in rows}


def swiglu_ffn(d_model):
    return d_model // 24 * 64  # the seed's FFN rule under --swiglu (seed_spec §1.1)


class _Stub:
    """Stands in for classes of the seed's code base (megatron.*, deepspeed.*) pickled next to the weights."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _LenientUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _Stub


_PICKLE = types.ModuleType("lenient_pickle")
_PICKLE.Unpickler = _LenientUnpickler
_PICKLE.load = lambda f, **kw: _LenientUnpickler(f, **kw).load()
_PICKLE.__dict__.update({k: getattr(pickle, k) for k in ("dump", "dumps", "loads", "HIGHEST_PROTOCOL")})


def torch_load(path):
    import torch

    try:
        return torch.load(path, map_location="cpu", pickle_module=_PICKLE)
    except Exception as e:  # noqa: BLE001 — any unreadable file is one user-facing error
        raise ConvertError(f"cannot read '{path}': {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def as_array(t, what):
    if not hasattr(t, "float") or not hasattr(t, "shape"):
        raise ConvertError(f"{what} is not a tensor ({type(t).__name__})")
    return t.detach().float().cpu().numpy()


def flatten(obj, prefix=""):
    """Nested dicts of tensors -> {dotted key: tensor}."""
    out = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def weights_of(sd):
    return {k: v for k, v in sd.items() if not k.endswith(IGNORED_SUFFIXES)}


# ------------------------------------------------------------------------------------------------------------
# Readers: each returns (tensors, step) with tensors = {"wte": arr, "lnf_w": arr, "layers": [ {name: arr} ]}.

LAYER_FILE = re.compile(r"^layer_(\d+)-model_(\d+)-model_states\.pt$")


def read_pipeline(ckpt_dir):
    files = {}
    for name in sorted(os.listdir(ckpt_dir)):
        m = LAYER_FILE.match(name)
        if m:
            if int(m.group(2)) != 0:
                raise ConvertError(f"'{ckpt_dir}': {name} belongs to tensor-parallel rank {int(m.group(2))}; "
                                   "only TP size 1 checkpoints are supported")
            files[int(m.group(1))] = os.path.join(ckpt_dir, name)
    if not files:
        raise ConvertError(f"'{ckpt_dir}' has no layer_XX-model_00-model_states.pt files")
    wte = lnf = None
    layers = []  # (index, {project name: array})
    for idx in sorted(files):
        path = files[idx]
        sd = torch_load(path)
        if not isinstance(sd, dict):
            raise ConvertError(f"'{path}' does not hold a state dict ({type(sd).__name__})")
        sd = weights_of(flatten(sd))
        keys = set(sd)
        if not keys:
            continue  # a parameter-free spec that still wrote a file
        if keys == {"word_embeddings.weight"}:
            emb = as_array(sd["word_embeddings.weight"], f"'{path}': word_embeddings.weight")
            if wte is None:
                if layers or lnf is not None:
                    raise ConvertError(f"'{path}': the embedding comes after transformer layers")
                wte = emb
            elif lnf is None:
                raise ConvertError(f"'{path}': a second embedding file before any final norm file (key 'weight'); "
                                   "the final norm is missing")
            elif emb.shape != wte.shape or not np.array_equal(emb, wte):
                raise ConvertError(f"'{path}': a second embedding that is not the tied copy of the first "
                                   "(untied output layers are not supported: the seed ties them)")
        elif keys == set(LAYER_KEYS):
            if wte is None or lnf is not None:
                raise ConvertError(f"'{path}': a transformer layer outside embedding .. final norm")
            if layers and idx != layers[-1][0] + 1:
                raise ConvertError(f"'{ckpt_dir}': transformer layer files jump from layer_{layers[-1][0]:02d} to "
                                   f"layer_{idx:02d} (missing layer file)")
            layers.append((idx, {LAYER_KEYS[k]: as_array(v, f"'{path}': {k}") for k, v in sd.items()}))
        elif keys == {"weight"}:
            if not layers or lnf is not None:
                raise ConvertError(f"'{path}': a final norm (key 'weight') before any transformer layer")
            lnf = as_array(sd["weight"], f"'{path}': weight")
        else:
            raise ConvertError(f"'{path}': unexpected keys {sorted(keys)} (want a seed embedding, transformer "
                               "layer or final RMSNorm; biases, LayerNorm or learned positions are not the seed's model)")
    if wte is None:
        raise ConvertError(f"'{ckpt_dir}': no embedding file (word_embeddings.weight)")
    if not layers:
        raise ConvertError(f"'{ckpt_dir}': no transformer layer files")
    if lnf is None:
        raise ConvertError(f"'{ckpt_dir}': no final norm file (key 'weight') after the transformer layers")
    m = re.search(r"global_step(\d+)", os.path.basename(os.path.normpath(ckpt_dir)))
    return {"wte": wte, "lnf_w": lnf, "layers": [d for _, d in layers]}, int(m.group(1)) if m else 0


def read_megatron(path):
    ck = torch_load(path)
    if not isinstance(ck, dict) or not isinstance(ck.get("model", ck.get("module")), dict):
        raise ConvertError(f"'{path}' has no 'model' (or 'module') state dict")
    flat = weights_of(flatten(ck.get("model", ck.get("module"))))
    emb_key = "embedding.word_embeddings.weight"
    prefix = next((k[: -len(emb_key)] for k in flat if k.endswith(emb_key)), "")  # e.g. "language_model."
    layer_re = re.compile(re.escape(prefix) + r"(?:encoder|transformer)\.layers\.(\d+)\.(.+)$")
    wte = lnf = None
    layers = {}
    for key, t in flat.items():
        lm = layer_re.match(key)
        if key == prefix + "embedding.word_embeddings.weight":
            wte = as_array(t, f"'{path}': {key}")
        elif key in (prefix + "encoder.final_layernorm.weight", prefix + "transformer.final_layernorm.weight"):
            lnf = as_array(t, f"'{path}': {key}")
        elif lm and lm.group(2) in LAYER_KEYS:
            layers.setdefault(int(lm.group(1)), {})[LAYER_KEYS[lm.group(2)]] = as_array(t, f"'{path}': {key}")
        else:
            raise ConvertError(f"'{path}': unexpected key '{key}' (not a weight of the seed's model)")
    if wte is None or lnf is None or not layers:
        raise ConvertError(f"'{path}': missing " + ", ".join(
            n for n, x in (("embedding.word_embeddings.weight", wte), ("final_layernorm.weight", lnf),
                           ("transformer layers", layers)) if x is None or (isinstance(x, dict) and not x)))
    if sorted(layers) != list(range(len(layers))):
        raise ConvertError(f"'{path}': transformer layers {sorted(layers)} are not 0..{len(layers) - 1}")
    for i, d in layers.items():
        if len(d) != len(LAYER_KEYS):
            missing = sorted(set(LAYER_KEYS.values()) - set(d))
            raise ConvertError(f"'{path}': layer {i} lacks {missing}")
    it = ck.get("iteration")
    step = it if isinstance(it, int) else 0
    m = re.search(r"iter_(\d+)", path)
    return {"wte": wte, "lnf_w": lnf, "layers": [layers[i] for i in range(len(layers))]}, step or (int(m.group(1)) if m else 0)


def read_seed(path):
    """Dispatches on what SEED_CKPT is (see the module docstring)."""
    if os.path.isfile(path):
        if LAYER_FILE.match(os.path.basename(path)):
            return read_pipeline(os.path.dirname(path) or ".")
        return read_megatron(path)
    if not os.path.isdir(path):
        raise ConvertError(f"'{path}' does not exist")
    for tag_file in ("latest", "latest_checkpointed_iteration.txt"):
        tf = os.path.join(path, tag_file)
        if os.path.isfile(tf):
            tag = open(tf).read().strip()
            if tag_file == "latest":
                sub = os.path.join(path, tag)
            elif tag == "release" or tag.isdigit():
                sub = os.path.join(path, "release" if tag == "release" else f"iter_{int(tag):07d}")
            else:
                raise ConvertError(f"'{tf}' holds '{tag}', not an iteration number")
            if not os.path.isdir(sub):
                raise ConvertError(f"'{tf}' names '{tag}', but '{sub}' does not exist")
            return read_seed(sub)
    if any(LAYER_FILE.match(n) for n in os.listdir(path)):
        return read_pipeline(path)
    for cand in ("mp_rank_00/model_optim_rng.pt", "mp_rank_00_model_states.pt"):
        if os.path.isfile(os.path.join(path, cand)):
            return read_megatron(os.path.join(path, cand))
    raise ConvertError(f"'{path}' is neither a pipeline checkpoint (layer_XX-model_00-model_states.pt) nor a "
                       "Megatron one (mp_rank_00/model_optim_rng.pt), and has no 'latest' file")


# ------------------------------------------------------------------------------------------------------------

def resolve_shape(t, args):
    """Checks every tensor against one model shape and returns the header fields {name: value}."""
    vp, h = t["wte"].shape if t["wte"].ndim == 2 else (None, None)
    if vp is None:
        raise ConvertError(f"word_embeddings.weight has shape {list(t['wte'].shape)}, want [padded_vocab, d_model]")
    L = len(t["layers"])
    qkv0, fc0 = t["layers"][0]["qkv_w"].shape, t["layers"][0]["fc_w"].shape
    if len(qkv0) != 2 or qkv0[0] % 3 or len(fc0) != 2 or fc0[0] % 2:
        raise ConvertError(f"layer 0: query_key_value {list(qkv0)} / dense_h_to_4h {list(fc0)} are not "
                           "[3*n*d, h] / [2*F, h]")
    A, F = qkv0[0] // 3, fc0[0] // 2
    presets = read_presets()
    if args.model:
        if args.model not in presets:
            raise ConvertError(f"unknown --model '{args.model}' (known: {', '.join(presets) or 'none: llmc/config.h not found'})")
        ph, pn, pd, pl = presets[args.model]
        want = {"d_model": ph, "n_layer": pl, "n_head": pn, "head_dim": pd, "ffn": swiglu_ffn(ph)}
        got = {"d_model": h, "n_layer": L, "attention dim n*d": A, "ffn": F}
        for k, v in (("d_model", h), ("n_layer", L), ("ffn", F)):
            if v != want[k]:
                raise ConvertError(f"the checkpoint has {k} {v}, model {args.model} has {want[k]} ({got})")
        if pn * pd != A:
            raise ConvertError(f"the checkpoint has attention dim {A}, model {args.model} has {pn}x{pd}")
        n_head, head_dim = pn, pd
    elif args.n_head or args.head_dim:
        n_head = args.n_head or (A // args.head_dim if A % args.head_dim == 0 else 0)
        head_dim = args.head_dim or (A // args.n_head if A % args.n_head == 0 else 0)
        if n_head * head_dim != A:
            raise ConvertError(f"attention dim {A} is not --n-head x --head-dim")
    else:
        fits = [n for n, (ph, pn, pd, pl) in presets.items() if (ph, pl, pn * pd) == (h, L, A) and swiglu_ffn(ph) == F]
        if len(fits) != 1:
            raise ConvertError(f"cannot tell the head count from the shapes (h {h}, L {L}, n*d {A}; presets that "
                               f"fit: {fits or 'none'}): pass --model or --n-head")
        _, n_head, head_dim, _ = presets[fits[0]]
        print(f"shape matches preset {fits[0]}: {n_head} heads x {head_dim}", file=sys.stderr)
    if head_dim % 2:
        raise ConvertError(f"head_dim {head_dim} must be even (RoPE)")
    want = {"qkv_w": (3 * A, h), "attproj_w": (h, A), "fc_w": (2 * F, h), "fcproj_w": (h, F), "ln1_w": (h,), "ln2_w": (h,)}
    for i, d in enumerate(t["layers"]):
        for name, shape in want.items():
            if d[name].shape != shape:
                seed_key = next(k for k, v in LAYER_KEYS.items() if v == name)
                raise ConvertError(f"layer {i}: {seed_key} has shape {list(d[name].shape)}, want {list(shape)}")
    if t["lnf_w"].shape != (h,):
        raise ConvertError(f"final norm weight has shape {list(t['lnf_w'].shape)}, want [{h}]")
    if not (args.vocab_size <= vp and 0 <= args.mask_id < vp):
        raise ConvertError(f"padded vocab {vp} cannot hold vocab {args.vocab_size} and mask id {args.mask_id}")
    for name, arr in [("wte", t["wte"]), ("lnf_w", t["lnf_w"])] + [(f"layer {i} {k}", v) for i, d in enumerate(t["layers"]) for k, v in d.items()]:
        if not np.isfinite(arr).all():
            raise ConvertError(f"{name} holds non-finite values")
    return dict(vocab_size=args.vocab_size, padded_vocab=vp, mask_id=args.mask_id, d_model=h, n_layer=L,
                n_head=n_head, head_dim=head_dim, ffn=F, seq_len=args.seq_len)


def pack_params(t):
    """One fp32 buffer in the ParamTensor order of llmc/config.h, each per-layer tensor stacked over layers."""
    parts = []
    for name in PARAM_ORDER:
        if name in ("wte", "lnf_w"):
            parts.append(t[name].reshape(-1))
        else:
            parts.extend(d[name].reshape(-1) for d in t["layers"])
    return np.ascontiguousarray(np.concatenate(parts), dtype="<f4")


def write_checkpoint(out, shape, objective, step, params, rope_theta, rms_eps):
    payload = params.tobytes()
    header = HEADER.pack(CKPT_MAGIC, CKPT_VERSION, OBJECTIVES[objective],
                         shape["vocab_size"], shape["padded_vocab"], shape["mask_id"], shape["d_model"],
                         shape["n_layer"], shape["n_head"], shape["head_dim"], shape["ffn"], shape["seq_len"],
                         rope_theta, rms_eps, 0, 0, 0,  # seed, has_optimizer, reserved0
                         step, 0, 0, params.size,  # step, consumed_samples, sampler_fingerprint, num_params
                         float("inf"), -1, fnv1a(payload), bytes(64))
    tmp = out + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except OSError as e:
        raise ConvertError(f"cannot write '{out}' ({e.strerror})")


def convert(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seed_ckpt", help="seed checkpoint directory or file (see above)")
    ap.add_argument("--objective", required=True, choices=sorted(OBJECTIVES), help="ar (GPTModelPipe) or mdm (DiffGPTModelPipe)")
    ap.add_argument("--out", required=True, help="project checkpoint to write")
    ap.add_argument("--model", help="size preset of llmc/config.h (e.g. 140m, 425m) the weights must match")
    ap.add_argument("--n-head", type=int, default=0, help="heads, when no preset fits")
    ap.add_argument("--head-dim", type=int, default=0, help="kv-channels, when no preset fits")
    ap.add_argument("--vocab-size", type=int, default=50257)
    ap.add_argument("--mask-id", type=int, default=50257)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--rms-eps", type=float, default=1e-5)
    ap.add_argument("--step", type=int, default=-1, help="override the step read from the checkpoint")
    args = ap.parse_args(argv)
    tensors, step = read_seed(args.seed_ckpt)
    shape = resolve_shape(tensors, args)
    params = pack_params(tensors)
    step = args.step if args.step >= 0 else step
    write_checkpoint(args.out, shape, args.objective, step, params, args.rope_theta, args.rms_eps)
    return args.out, shape, step, params.size


def main():
    try:
        out, shape, step, n = convert(sys.argv[1:])
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {out}: step {step}, {n} parameters, " + ", ".join(f"{k} {v}" for k, v in shape.items()))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""scripts/plot_crossover.py — the report of scripts/crossover.sh: one row per run (RUNS/*/train.jsonl), the best
validation loss of each (AR mean NLL; MDM Monte-Carlo ELBO +- its standard error), plotted against epochs and
training FLOPs, and whether / from which compute the best MDM run beats the best AR run.

    python3 scripts/plot_crossover.py --runs RUNS --out DIR [--val-data PREFIX]

Writes DIR/results.md, DIR/results.csv and DIR/crossover.png (when matplotlib is importable; otherwise the PNG is
skipped with a note). FLOPs are the seed's convention C = 6 N D (N = the seed's parameter formula, D = trained
tokens). A run counts only when its log reaches its last planned step ("complete"); a cut-off run is listed but
left out of the comparison and the plot, and one with no validation after step 0 is left out with a note. MDM beats
AR only when its loss is lower by more than two standard errors.
With --val-data, each comparison also gets a reference: the loss of a unigram model of its U training tokens.
"""
import argparse
import array
import csv
import math
import os
import sys
from collections import Counter

from analysis import InputError, NoEvalError, log_path, read_log, save_plot  # log reader and figure saving shared with fit_scaling.py

COLUMNS = ["run", "objective", "model", "params", "unique_tokens", "epochs", "steps", "tokens", "flops",
           "best_val_loss", "best_val_stderr", "best_step", "mc_samples", "wall_s", "tok_per_s", "complete"]


# What must be equal across the runs of one comparison besides U and the model (logged in each run's config record;
# older logs lack some): the training recipe and the validation set. MDM runs also share their ELBO draws.
SETTING_KEYS = ["seq_len", "batch", "lr", "min_lr", "weight_decay", "dropout", "attn_dropout", "seed", "train_data",
                "val_data", "eval_samples", "eval_seed"]
MDM_SETTING_KEYS = ["mc_samples", "stratified"]


def setting_differences(runs):
    """Names of the settings that differ between runs of one comparison (a mixed-up folder, say)."""
    keys = SETTING_KEYS + MDM_SETTING_KEYS
    differ = []
    for k in keys:
        pool = [r for r in runs if k in SETTING_KEYS or r["objective"] == "mdm"]
        if len({repr(r["setting"][k]) for r in pool if k in r["setting"]}) > 1:
            differ.append(k)
    return differ


def load_run(run_dir):
    """The table row of one run directory (train.jsonl or .gz, optional wall_seconds written by crossover.sh)."""
    path = log_path(run_dir)
    config, evals, trains = read_log(path)
    for key in ("objective", "model", "params_seed_formula", "unique_tokens", "total_steps", "batch", "seq_len",
                "flops_per_token_seed"):
        if key not in config:
            raise InputError(f"log '{path}': its config record has no '{key}'")
    tokens = int(config["total_steps"]) * int(config["batch"]) * int(config["seq_len"])
    best = min(evals, key=lambda e: e["val_loss"])  # the first of equal losses, as the trainers' best_step
    train_s = sum(float(t.get("ms", 0)) for t in trains) / 1000
    trained = len(trains) * int(config["batch"]) * int(config["seq_len"])
    wall = None
    try:
        with open(os.path.join(run_dir, "wall_seconds")) as f:
            wall = float(f.read())
    except (OSError, ValueError):
        pass
    return {"run": os.path.basename(os.path.normpath(run_dir)), "objective": config["objective"],
            "model": config["model"], "params": round(float(config["params_seed_formula"])),
            "unique_tokens": int(config["unique_tokens"]), "epochs": tokens / int(config["unique_tokens"]),
            "steps": int(config["total_steps"]), "tokens": tokens,
            "flops": float(config["flops_per_token_seed"]) * tokens, "best_val_loss": best["val_loss"],
            "best_val_stderr": float(best.get("val_stderr") or 0.0), "best_step": best["step"],
            "mc_samples": int(best.get("mc_samples", 1)), "wall_s": wall,
            "tok_per_s": round(trained / train_s, 1) if train_s > 0 else None,
            "complete": evals[-1]["step"] >= int(config["total_steps"]), "last_eval_step": evals[-1]["step"],
            "train_data": config.get("train_data"),
            "setting": {k: config[k] for k in SETTING_KEYS + MDM_SETTING_KEYS if k in config}}


def read_tokens(prefix, count=None):
    """The first `count` tokens (all when None) of PREFIX.bin: a Megatron dataset's documents as one uint16 stream."""
    path = prefix + ".bin"
    try:
        with open(path, "rb") as f:
            data = f.read(-1 if count is None else 2 * count)
    except OSError as e:
        raise InputError(f"cannot read '{path}' ({e.strerror})")
    if count is not None and len(data) < 2 * count:
        raise InputError(f"'{path}' holds {len(data) // 2:,} tokens, fewer than U = {count:,}")
    tokens = array.array("H")
    tokens.frombytes(data[: len(data) // 2 * 2])
    if sys.byteorder == "big":
        tokens.byteswap()
    return tokens


def unigram_loss(train_prefix, unique_tokens, val_prefix, vocab=50257):
    """Cross-entropy (nats/token) over every validation token of the unigram model of the first U training tokens,
    add-one smoothed over the GPT-2 ids: what a model that has learnt no context scores. For an MDM's ELBO it is the
    same number (a context-free predictor's ELBO is its mean per-token cross-entropy, whatever the masks)."""
    counts = Counter(read_tokens(train_prefix, unique_tokens))
    val = Counter(read_tokens(val_prefix))
    norm = math.log(unique_tokens + vocab)
    return sum(n * (norm - math.log(counts.get(t, 0) + 1)) for t, n in val.items()) / sum(val.values())


def paper_critical_compute(unique_tokens):
    """The paper's closed form for the compute at which diffusion's frontier crosses AR's, C_crit(U) = 2.12e15 *
    U^2.174 FLOPs with U in millions of unique tokens (seed_spec section 7: recollected, UNCONFIRMED; the unit is
    the one that puts the 100M-token case, 4.7e19, between the seed's best AR and MDM runs, 4.3e18 and 1.25e20)."""
    return 2.12e15 * (unique_tokens / 1e6) ** 2.174


def frontier(runs, flops):
    """The best run (lowest loss) among runs trained with at most `flops` FLOPs, or None."""
    done = [r for r in runs if r["flops"] <= flops * (1 + 1e-9)]
    return min(done, key=lambda r: r["best_val_loss"]) if done else None


def verdict(runs):
    """(lines saying whether and where MDM's best validation loss drops below AR's, the crossing run or None)."""
    ar = [r for r in runs if r["objective"] == "ar" and r["complete"]]
    mdm = [r for r in runs if r["objective"] == "mdm" and r["complete"]]
    if not ar or not mdm:
        return ["needs complete runs of both objectives"], None

    def gap(a, m):  # AR minus MDM and its standard error (AR's is 0: its NLL is exact on the fixed set)
        return a["best_val_loss"] - m["best_val_loss"], math.hypot(a["best_val_stderr"], m["best_val_stderr"])

    def desc(r):
        return (f"{r['objective'].upper()} {r['best_val_loss']:.4f}"
                + (f" +- {r['best_val_stderr']:.4f}" if r["objective"] == "mdm" else "")
                + f" ({r['epochs']:.3g} epochs, {r['flops']:.3g} FLOPs)")

    a, m = frontier(ar, math.inf), frontier(mdm, math.inf)
    d, se = gap(a, m)
    lines, where = [f"best AR: {desc(a)}; best MDM: {desc(m)}"], None
    if d > 2 * se:
        # The crossing: the smallest run compute from which on MDM's frontier stays below AR's at every larger run
        # compute (a lead at low compute that AR takes back later is not a crossing). The largest compute is a win
        # (d > 2 s.e.), so the scan from the top down finds it; the true crossing lies above the compute before it.
        points = sorted({r["flops"] for r in runs if r["complete"]})
        start = len(points)
        while start > 0:
            fa, fm = frontier(ar, points[start - 1]), frontier(mdm, points[start - 1])
            if not (fa and fm and gap(fa, fm)[0] > 2 * gap(fa, fm)[1]):
                break
            start -= 1
        where = frontier(mdm, points[start])
        between = (f"; the crossing lies between {points[start - 1]:.3g} and {where['flops']:.3g} FLOPs"
                   if start > 0 else "")
        lines.append(f"MDM overtakes AR: its best loss is lower by {d:.4f} nats/token (> 2 s.e. = {2 * se:.4f}); "
                     f"from {where['flops']:.3g} FLOPs on ({where['epochs']:.3g} epochs, run {where['run']}{between}) "
                     f"the best MDM run at <= any run compute beats the best AR run at <= that compute")
    elif d < -2 * se:
        lines.append(f"no crossover: AR's best loss is lower by {-d:.4f} nats/token (> 2 s.e. = {2 * se:.4f}); "
                     f"MDM does not overtake AR in these runs")
    else:
        lines.append(f"inconclusive: the best losses differ by {abs(d):.4f} nats/token, within 2 s.e. = {2 * se:.4f}")
    for best, runs_obj, name in ((a, ar, "AR"), (m, mdm, "MDM")):
        # only while still improving at its last validation: a longest run that peaked earlier has overfit
        if (len(runs_obj) > 1 and best["epochs"] >= max(r["epochs"] for r in runs_obj)
                and best["best_step"] >= best["last_eval_step"]):
            lines.append(f"note: {name}'s best is its longest run: more epochs may lower it")
    return lines, where


def fmt_row(r):
    se = f" +- {r['best_val_stderr']:.4f}" if r["objective"] == "mdm" else ""
    wall = "n/a" if r["wall_s"] is None else f"{r['wall_s']:.1f}"
    tps = "n/a" if r["tok_per_s"] is None else f"{r['tok_per_s']:,.0f}"
    return (f"| {r['objective']} | {r['model']} | {r['params'] / 1e6:.2f}M | {r['unique_tokens']:,} | {r['epochs']:.3g} "
            f"| {r['steps']:,} | {r['tokens']:,} | {r['flops']:.3g} | {r['best_val_loss']:.4f}{se} | {r['best_step']:,} "
            f"| {r['mc_samples']} | {wall} | {tps} |" + ("" if r["complete"] else " incomplete"))


def draw(plt, groups, crossings, baselines):
    colors = {"ar": "tab:blue", "mdm": "tab:red"}
    styles = ["-", "--", ":", "-."]  # one line style per model, so several models' runs stay apart in one figure
    size = {}  # model -> parameters: the models in order of size pick the line styles
    for (_, model), runs in groups.items():
        size[model] = min(r["params"] for r in runs)
    models = sorted(size, key=size.get)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    drawn_baselines = set()
    for (U, model), runs in groups.items():
        m = models.index(model)
        ls = styles[m % len(styles)]
        for obj in ("ar", "mdm"):
            rs = sorted((r for r in runs if r["objective"] == obj and r["complete"]), key=lambda r: r["flops"])
            if not rs:
                continue
            label = (f"{obj.upper()} {'NLL' if obj == 'ar' else 'ELBO (K=%d)' % rs[0]['mc_samples']}, "
                     f"{model}, U={U:.3g}")
            for ax, key in zip(axes, ("epochs", "flops")):
                ax.errorbar([r[key] for r in rs], [r["best_val_loss"] for r in rs],
                            yerr=[r["best_val_stderr"] for r in rs] if obj == "mdm" else None,
                            fmt="o" if obj == "ar" else "s", ls=ls, color=colors[obj], capsize=3, label=label,
                            mfc=colors[obj] if m % 2 == 0 else "white")
        if baselines.get((U, model)) is not None and U not in drawn_baselines:  # it depends on U alone
            drawn_baselines.add(U)
            for ax in axes:
                ax.axhline(baselines[(U, model)], color="gray", ls="--", lw=1, label=f"unigram of the U tokens, U={U:.3g}")
        x = crossings.get((U, model))
        if x:  # from here on MDM's best run at <= this compute beats AR's
            for ax, key in zip(axes, ("epochs", "flops")):
                ax.axvline(x[key], color="gray", ls=":", lw=1, label=f"MDM overtakes AR ({model}, U={U:.3g})")
    for ax, xlabel in zip(axes, ("epochs over the U unique tokens", "training FLOPs (6 N D)")):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("best validation loss (nats/token)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    epochs = [r["epochs"] for runs in groups.values() for r in runs if r["complete"]]
    if epochs:  # powers of two as epoch ticks (1, 2, 4, ...): the plans double epochs, and labels never collide
        lo, hi = math.floor(math.log2(min(epochs)) + 0.01), math.ceil(math.log2(max(epochs)) - 0.01)  # 0.999 epochs: 1
        ticks = [2.0 ** k for k in range(lo, hi + 1)]
        axes[0].minorticks_off()
        axes[0].set_xticks(ticks)
        axes[0].set_xticklabels([f"{t:g}" for t in ticks])
    fig.suptitle("Best validation loss per run: AR vs masked diffusion on repeated data")
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True,
                    help="folder holding one sub-folder per run, each with a train.jsonl (or train.jsonl.gz)")
    ap.add_argument("--out", help="where results.md / results.csv / crossover.png go (default: --runs)")
    ap.add_argument("--val-data", help="validation dataset prefix: adds each comparison's unigram reference loss "
                    "(the training data is the one named in the runs' logs)")
    args = ap.parse_args(argv)
    out = args.out or args.runs
    try:
        if not os.path.isdir(args.runs):
            raise InputError(f"--runs '{args.runs}' is not a folder")
        dirs = sorted(d for d in (os.path.join(args.runs, n) for n in os.listdir(args.runs))
                      if log_path(d))
        if not dirs:
            raise InputError(f"no run folders with a train.jsonl in '{args.runs}'")
        runs, left_out = [], []
        for d in dirs:  # a run that ended before its first validation has nothing to report; the rest still do
            try:
                runs.append(load_run(d))
            except NoEvalError as e:
                left_out.append(f"note: run '{d}' left out: {e}")
        if not runs:
            raise InputError(f"none of the {len(dirs)} runs in '{args.runs}' has a validation after step 0")
        for line in left_out:
            print(line, file=sys.stderr)
        runs.sort(key=lambda r: (r["objective"], r["unique_tokens"], r["epochs"]))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    groups = {}
    for r in runs:  # one comparison per (U, model): runs of other settings left in the folder stay apart
        groups.setdefault((r["unique_tokens"], r["model"]), []).append(r)
    lines = ["| objective | model | params N | U | epochs | steps | tokens | FLOPs | best val loss | best step | K "
             "| wall s | tok/s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [fmt_row(r) for r in runs]
    summary, crossings, baselines = [], {}, {}
    for (U, model), rs in groups.items():
        v, crossings[(U, model)] = verdict(rs)
        done = [r["flops"] for r in rs if r["complete"]]
        if done:
            v.append(f"reference: the paper's critical compute C_crit(U) = 2.12e15 * (U/1e6)^2.174 FLOPs (recollected, "
                     f"unconfirmed; from runs at U = 25M-100M with the best model size per budget) is "
                     f"{paper_critical_compute(U):.3g} here; these runs span {min(done):.3g} - {max(done):.3g} FLOPs")
        differ = setting_differences(rs)
        if differ:
            v.append(f"warning: these runs differ in {', '.join(differ)}: they are not one experiment")
        if args.val_data:
            train = {r["train_data"] for r in rs}
            if len(train) != 1 or None in train:
                v.append("reference: no unigram loss (the runs' logs do not name one training dataset)")
            else:
                try:
                    baselines[(U, model)] = unigram_loss(train.pop(), U, args.val_data)
                    v.append(f"reference: a unigram model of the U training tokens (add-one smoothed) scores "
                             f"{baselines[(U, model)]:.4f} nats/token on {args.val_data}")
                except InputError as e:  # the runs' report stands without it
                    v.append(f"reference: no unigram loss ({e})")
        summary += [f"U = {U:,}, {model}:"] + [f"  {line}" for line in v]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("# Scaled-down crossover: best validation loss per run\n\n"
                "Loss in nats/token on the same validation sequences for every run: AR mean NLL, MDM stratified "
                "Monte-Carlo ELBO (K draws) +- its Monte-Carlo standard error (collapsed strata: llmc/eval.h). "
                "That s.e. is the evaluation's noise only: it leaves out how much a run's loss would move with another "
                "training seed, and each best is the lowest of the run's validations (the same draws every time). "
                "FLOPs = 6 N D (seed convention). wall s: the whole run (start-up and validations included); "
                "tok/s: training steps only.\n\n" + "\n".join(lines) + "\n\n" + "\n".join(summary) + "\n")
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in runs:
            w.writerow(["" if r[c] is None else (int(r[c]) if c == "complete" else r[c]) for c in COLUMNS])
    note = save_plot(os.path.join(out, "crossover.png"), lambda plt: draw(plt, groups, crossings, baselines))
    print("\n".join(lines))
    print("\n".join(summary))
    print(f"wrote {out}/results.md, {out}/results.csv; {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

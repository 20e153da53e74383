#!/usr/bin/env python3
"""scripts/seed/plot_100m.py — turns the seed-reproduction runs into a table and a plot: the periodic validation
loss of each run (train.jsonl "eval" lines) against epochs over its unique tokens, and the final evaluations of
scripts/seed/eval_100m.sh (eval_cpu "val ..." lines: AR NLL, MDM ELBO for each K) as a summary.

    python3 scripts/seed/plot_100m.py --runs RUN_DIR... --eval-dir DIR --out PREFIX

Writes PREFIX.csv (the curves), PREFIX.txt (the summary) and PREFIX.png when matplotlib is importable (it is
optional: without it the PNG is skipped with a note). Standard library only otherwise.
"""
import argparse
import glob
import json
import os
import re
import sys

VAL_RE = re.compile(r"^val (\S+): (\d+) sequences \| (NLL|ELBO) ([0-9.]+)(?: \+- ([0-9.]+))? nats/token(?: \(K=(\d+))?")


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def read_run(run_dir):
    """(name, objective, [(step, epoch, val_loss, val_stderr)]) from RUN_DIR/train.jsonl; None if absent."""
    path = os.path.join(run_dir, "train.jsonl")
    if not os.path.exists(path):
        return None
    cfg, curve = None, {}
    for n, line in enumerate(open(path), 1):
        try:
            j = json.loads(line)
        except json.JSONDecodeError:
            die(f"{path}:{n}: not a JSON line")
        if j.get("kind") == "config":
            cfg = j
        elif j.get("kind") == "eval":
            if cfg is None:
                die(f"{path}:{n}: eval line before any config line")
            # Epochs seen at this step: the run's planned epochs scaled by its progress (a resumed run logs twice).
            ep = cfg["epochs"] * j["step"] / cfg["total_steps"]
            curve[j["step"]] = (j["step"], ep, j["val_loss"], j.get("val_stderr", 0.0))
    if cfg is None:
        die(f"{path}: no config line")
    return os.path.basename(os.path.normpath(run_dir)), cfg["objective"], [curve[s] for s in sorted(curve)]


def read_evals(eval_dir):
    """[(file, metric, value, stderr, K, sequences)] from the eval_cpu outputs in DIR/*.txt."""
    out = []
    for path in sorted(glob.glob(os.path.join(eval_dir, "*.txt"))):
        for line in open(path):
            m = VAL_RE.match(line)
            if m:
                out.append((os.path.basename(path), m.group(3), float(m.group(4)), float(m.group(5) or 0),
                            int(m.group(6) or 1), int(m.group(2))))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", default=[])
    ap.add_argument("--eval-dir", default="")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = [r for r in (read_run(d) for d in a.runs) if r is not None]
    evals = read_evals(a.eval_dir) if a.eval_dir else []
    if not runs and not evals:
        die("nothing to plot: no RUN/train.jsonl among --runs and no eval outputs in --eval-dir")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out + ".csv", "w") as f:
        f.write("run,objective,step,epoch,val_loss,val_stderr\n")
        for name, obj, curve in runs:
            for s, ep, v, se in curve:
                f.write(f"{name},{obj},{s},{ep:.4f},{v:.6f},{se:.6f}\n")
    lines = []
    for name, obj, curve in runs:
        if curve:
            b = min(curve, key=lambda c: c[2])
            lines.append(f"{name} ({obj}): best periodic validation {b[2]:.4f} at step {b[0]} ({b[1]:.1f} epochs), "
                         f"last {curve[-1][2]:.4f} at step {curve[-1][0]}")
    for fname, metric, v, se, k, n in evals:
        extra = f" +- {se:.4f} (K={k})" if metric == "ELBO" else ""
        lines.append(f"{fname}: {metric} {v:.4f}{extra} nats/token over {n} sequences")
    open(a.out + ".txt", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: matplotlib not installed, {a.out}.png skipped (table in {a.out}.csv)")
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, obj, curve in runs:
        ax.plot([c[1] for c in curve], [c[2] for c in curve], marker=".", label=f"{name} ({'NLL' if obj == 'ar' else 'ELBO'})")
    ax.set_xlabel("epochs over the unique tokens")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Seed 100M-token runs: AR 140m vs MDM 425m")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out + ".png", dpi=120)
    print(f"wrote {a.out}.png")


if __name__ == "__main__":
    main()

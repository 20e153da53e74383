"""scripts/analysis.py — what the analysis scripts (fit_scaling.py, plot_crossover.py) share: reading the trainers'
JSONL logs (llmc/train_loop.h, llmc/logger.h) and saving a figure when matplotlib works. Standard library only, so
that scripts needing no numpy/scipy can import it.

A log holds a "config" record first (again after each resume), a "train" record per optimizer step and an "eval"
record per validation: step, val_loss, val_stderr (MDM: Monte-Carlo standard error; AR: 0), best_val_loss, best_step.
"""
import gzip
import json
import math
import os


class InputError(Exception):
    """A problem with the user's manifest or logs; reported as one 'error: ...' line."""


class NoEvalError(InputError):
    """A well-formed log without a validation after step 0: a run stopped or failed before its first one."""


def log_path(run_dir):
    """A run folder's log: train.jsonl, or train.jsonl.gz as archived runs keep it (docs/results); None if neither."""
    for name in ("train.jsonl", "train.jsonl.gz"):
        if os.path.isfile(os.path.join(run_dir, name)):
            return os.path.join(run_dir, name)
    return None


def run_name(path):
    """A log's label: its run folder's name for crossover-style runs (<run>/train.jsonl[.gz]), else its file name."""
    base = os.path.basename(path)
    return os.path.basename(os.path.dirname(os.path.abspath(path))) if base in ("train.jsonl", "train.jsonl.gz") else base


def read_log(path):
    """(last config record or {}, eval records, train records) of a JSONL log, records as dicts sorted by step.

    Resumed runs append to their log, so the last config wins and a step logged twice keeps its later record.
    Each eval record's step is an int and its val_loss a positive float; a log needs an eval after step 0.
    A path ending in .gz is read through gzip (archived logs).
    """
    config, evals, trains = {}, {}, {}
    try:
        f = gzip.open(path, "rt") if path.endswith(".gz") else open(path)
    except OSError as e:
        raise InputError(f"cannot read log '{path}' ({e.strerror})")
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"log '{path}' line {lineno}: invalid JSON ({e.msg})")
            if not isinstance(rec, dict):
                raise InputError(f"log '{path}' line {lineno}: not a JSON object")
            if rec.get("kind") == "config":
                config = rec
            elif rec.get("kind") == "eval":
                try:
                    rec["step"], rec["val_loss"] = int(rec["step"]), float(rec["val_loss"])
                except (KeyError, TypeError, ValueError):
                    raise InputError(f"log '{path}' line {lineno}: eval record needs integer 'step' and 'val_loss'")
                if not math.isfinite(rec["val_loss"]) or rec["val_loss"] <= 0:
                    raise InputError(f"log '{path}' line {lineno}: val_loss {rec['val_loss']!r} is not positive")
                evals[rec["step"]] = rec
            elif rec.get("kind") == "train" and isinstance(rec.get("step"), int):
                trains[rec["step"]] = rec
    if not any(s > 0 for s in evals):
        raise NoEvalError(f"log '{path}': no eval records after step 0")
    return config, [evals[s] for s in sorted(evals)], [trains[s] for s in sorted(trains)]


def save_plot(path, draw):
    """Saves the figure that draw(pyplot) returns to path; returns 'wrote PATH' or 'no plot (why)'."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # a missing or broken matplotlib only costs the picture
        return f"no plot ({type(e).__name__}: {e})"
    fig = draw(plt)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"wrote {path}"

#!/usr/bin/env python3
"""Fits the data-constrained scaling law (seed_spec section 7) to the trainers' JSONL logs, per objective.

    L(N, D, U) = E + A / N'^alpha + B / D'^beta
    R_D = D/U - 1,    D' = U + U*R_D*(1 - exp(-R_D/R_D*))        (D' = D while D <= U: nothing repeated yet)
    U_N = min(N, N_opt(U)),  R_N = N/U_N - 1,  N' = U_N + U_N*R_N*(1 - exp(-R_N/R_N*))

N_opt(U) is the parameter count that is compute-optimal when the single-epoch budget is exactly U tokens, from the
Chinchilla part of the same law (as in Muennighoff et al. 2023): minimising E + A/N^a + B/D^b at fixed C = 6ND
gives a*A/N^a = b*B/D^b, hence N_opt(U) = (a*A / (b*B))^(1/a) * U^(b/a). It is recomputed from the parameters
being fitted (a joint fit of all seven constants), so no separate single-epoch fit is needed.

Fit: Huber loss (delta 1e-3) on log L_pred - log L_obs, L-BFGS-B from the best starts of a grid of initial
values, bounded parameters (Hoffmann et al. 2022 / Muennighoff et al. 2023 style).

Inputs: a manifest (CSV or JSON, one row per run) and/or log files. A run's configuration comes from the log's
"kind": "config" line when present (objective, params_seed_formula, unique_tokens, batch, seq_len); manifest
columns override it. Manifest columns:
    log              path of the JSONL log (relative to the manifest's folder)
    objective        ar | mdm
    n_params         N, seed formula (section 1.11); or n_layer, d_model, ffn to compute it
    unique_tokens    U
    tokens_per_step  global batch * seq_len (tokens consumed per optimizer step)
    name             optional label
Each eval point gives D = step * tokens_per_step, C = 6 N D and the best-so-far validation loss; by default the
fit uses each run's last eval point (its whole budget and best loss), --fit-points all uses every eval point.

Outputs in --out: fit_results.json, fit_results.md, pareto.csv, points.csv and scaling.png (if matplotlib works).
"""
import argparse
import csv
import json
import math
import os
import sys

try:  # numpy/scipy are optional project dependencies, only this script needs them (checked after --help)
    import numpy as np
    from scipy import optimize
    MISSING = None
except ImportError as e:
    MISSING = f"fit_scaling.py needs numpy and scipy ({e}); install python3-numpy python3-scipy"
from analysis import InputError, read_log, run_name, save_plot  # log reader and figure saving shared with plot_crossover.py

OBJECTIVES = ("ar", "mdm")
PARAM_NAMES = ("E", "A", "B", "alpha", "beta", "R_N*", "R_D*")
HUBER_DELTA = 1e-3


# ----------------------------------------------------------------------------------------------- the law

def seed_param_count(n_layer, d_model, ffn):
    """N of seed_spec section 1.11 (embedding counted once with the unpadded GPT-2 vocabulary)."""
    L, h, F = n_layer, d_model, ffn
    return 4 * L * h * h + 3 * L * h * F + 6 * L * h + 50257 * h


def log_n_opt(U, A, B, alpha, beta):
    """log N_opt(U): the size that balances the marginal N and D terms when D = U (Chinchilla optimum)."""
    return (math.log(alpha * A / (beta * B))) / alpha + (beta / alpha) * np.log(U)


def _effective(x, base, rstar):
    """base * (1 + R*(1 - exp(-R/R*))) with R = x/base - 1; x itself when nothing is in excess (R <= 0)."""
    R = x / base - 1.0
    eff = base * (1.0 + rstar * -np.expm1(-np.maximum(R, 0.0) / rstar))
    return np.where(R > 0, eff, x)


def predict(p, N, D, U):
    """Law prediction for arrays N, D, U with p = dict of PARAM_NAMES."""
    N, D, U = (np.asarray(v, dtype=float) for v in (N, D, U))
    UN = np.minimum(N, np.exp(log_n_opt(U, p["A"], p["B"], p["alpha"], p["beta"])))
    Np = _effective(N, UN, p["R_N*"])
    Dp = _effective(D, U, p["R_D*"])
    # Powers in log space: A can be astronomically large when alpha is large.
    return p["E"] + np.exp(math.log(p["A"]) - p["alpha"] * np.log(Np)) + np.exp(math.log(p["B"]) - p["beta"] * np.log(Dp))


def _unpack(x):
    return {"E": math.exp(x[0]), "A": math.exp(x[1]), "B": math.exp(x[2]), "alpha": x[3], "beta": x[4],
            "R_N*": math.exp(x[5]), "R_D*": math.exp(x[6])}


def _huber(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _objective(x, N, D, U, logL, delta):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred = predict(_unpack(x), N, D, U)
        r = np.log(pred) - logL
    v = float(np.mean(_huber(r, delta)))
    return v if math.isfinite(v) else 1e30


def fit_law(N, D, U, L, delta=HUBER_DELTA, top_k=12):
    """Returns (params dict, objective value, log-RMSE). Grid of starts -> best top_k -> L-BFGS-B."""
    N, D, U, L = (np.asarray(v, dtype=float) for v in (N, D, U, L))
    if len(L) < len(PARAM_NAMES):
        raise InputError(f"only {len(L)} data points for {len(PARAM_NAMES)} parameters")
    logL = np.log(L)
    Nm, Dm = math.exp(np.median(np.log(N))), math.exp(np.median(np.log(D)))
    lmin = float(L.min())
    bounds = [(math.log(0.02), math.log(float(L.max()))), (-10, 80), (-10, 80), (0.02, 2.0), (0.02, 2.0),
              (math.log(0.01), math.log(1e6)), (math.log(0.01), math.log(1e6))]
    # A and B are seeded through the size of their term at the median N and D, which decouples them from alpha, beta.
    starts = []
    for e in (0.3, 0.6, 0.9):
        for a in (0.2, 0.35, 0.55, 0.8):
            for b in (0.2, 0.35, 0.55, 0.8):
                for ta in (0.1, 0.5, 2.0):
                    for tb in (0.1, 0.5, 2.0):
                        for rn in (2.0, 30.0):
                            for rd in (3.0, 30.0, 300.0, 3000.0):
                                starts.append([math.log(e * lmin), math.log(ta * lmin) + a * math.log(Nm),
                                               math.log(tb * lmin) + b * math.log(Dm), a, b, math.log(rn),
                                               math.log(rd)])
    starts = np.clip(np.array(starts), [lo for lo, _ in bounds], [hi for _, hi in bounds])
    vals = np.array([_objective(s, N, D, U, logL, delta) for s in starts])
    best = None
    for i in np.argsort(vals)[:top_k]:
        res = optimize.minimize(_objective, starts[i], args=(N, D, U, logL, delta), method="L-BFGS-B",
                                bounds=bounds, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if best is None or res.fun < best.fun:
            best = res
    p = _unpack(best.x)
    rmse = float(np.sqrt(np.mean((np.log(predict(p, N, D, U)) - logL) ** 2)))
    return p, float(best.fun), rmse


# ---------------------------------------------------------------------------------- frontiers and crossing

def fitted_frontier(p, C, U, logn_lo=4.0, logn_hi=14.0):
    """min over N of L(N, C/(6N), U) for each C (dense log grid, then bounded refinement); returns (L, N)."""
    C = np.atleast_1d(np.asarray(C, dtype=float))
    grid = np.logspace(logn_lo, logn_hi, 601)
    losses = predict(p, grid[None, :], C[:, None] / (6 * grid[None, :]), U)
    out_L, out_N = np.empty(len(C)), np.empty(len(C))
    step = (logn_hi - logn_lo) / 600
    for i, c in enumerate(C):
        j = int(np.argmin(losses[i]))
        lo, hi = math.log10(grid[j]) - step, math.log10(grid[j]) + step
        r = optimize.minimize_scalar(lambda ln: float(predict(p, 10 ** ln, c / (6 * 10 ** ln), U)),
                                     bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
        out_L[i], out_N[i] = (r.fun, 10 ** r.x) if r.fun < losses[i, j] else (losses[i, j], grid[j])
    return out_L, out_N


def crossings(p_ar, p_mdm, U, cmin, cmax):
    """Computes C where the fitted AR and MDM frontiers cross for U unique tokens; list of dicts (maybe empty)."""
    C = np.logspace(math.log10(cmin), math.log10(cmax), 161)
    diff = fitted_frontier(p_ar, C, U)[0] - fitted_frontier(p_mdm, C, U)[0]
    f = lambda lc: float(fitted_frontier(p_ar, 10 ** lc, U)[0][0] - fitted_frontier(p_mdm, 10 ** lc, U)[0][0])
    out = []
    for i in range(len(C) - 1):
        if diff[i] == 0 or diff[i] * diff[i + 1] < 0:
            lc = math.log10(C[i]) if diff[i] == 0 else optimize.brentq(f, math.log10(C[i]), math.log10(C[i + 1]),
                                                                       xtol=1e-6)
            better_after = "mdm" if diff[i + 1] > 0 else "ar"
            out.append({"C": 10 ** lc, "better_above": better_after})
    return out


def empirical_pareto(points):
    """points: list of (C, loss, run, step); returns those that beat every cheaper point (best loss at <= C)."""
    front, best = [], math.inf
    for c, l, run, step in sorted(points, key=lambda t: (t[0], t[1])):
        if l < best:
            best = l
            front.append((c, l, run, step))
    return front


# ------------------------------------------------------------------------------------------------ inputs

def _number(row, key, where, required=True):
    v = row.get(key)
    if v is None or v == "":
        if required:
            raise InputError(f"{where}: missing '{key}'")
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{where}: '{key}' is not a number ({v!r})")
    if not math.isfinite(x) or x <= 0:
        raise InputError(f"{where}: '{key}' must be a positive number ({v!r})")
    return x


def read_manifest(path):
    """Rows (dicts) of a CSV or JSON manifest; JSON is a list of objects or {"runs": [...]}."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise InputError(f"cannot read manifest '{path}' ({e.strerror})")
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"manifest '{path}' line {e.lineno}: invalid JSON ({e.msg})")
        rows = data.get("runs") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputError(f"manifest '{path}': expected a list of objects (or {{\"runs\": [...]}})")
    else:
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "log" not in rows[0]:
            raise InputError(f"manifest '{path}': CSV header has no 'log' column")
    if not rows:
        raise InputError(f"manifest '{path}' lists no runs")
    base = os.path.dirname(os.path.abspath(path))
    for i, r in enumerate(rows):
        if not r.get("log"):
            raise InputError(f"manifest '{path}' run {i + 1}: missing 'log'")
        r["log"] = os.path.join(base, str(r["log"]))
        r["_where"] = f"manifest '{path}' run {i + 1}"
    return rows


def build_run(row):
    """One run: manifest row (or bare log) + its log's config line -> dict with per-eval D, C, best-so-far loss."""
    where = row.get("_where", f"log '{row['log']}'")
    config, evals, _ = read_log(row["log"])
    merged = {"objective": config.get("objective"), "unique_tokens": config.get("unique_tokens"),
              "n_params": config.get("params_seed_formula")}
    if config.get("batch") and config.get("seq_len"):
        merged["tokens_per_step"] = int(config["batch"]) * int(config["seq_len"])
    for k, v in row.items():
        if v not in (None, "") and not k.startswith("_"):
            merged[k] = v
    if merged.get("n_layer") not in (None, "") and row.get("n_params") in (None, ""):
        merged["n_params"] = seed_param_count(int(_number(merged, "n_layer", where)),
                                              int(_number(merged, "d_model", where)), int(_number(merged, "ffn", where)))
    obj = str(merged.get("objective") or "").lower()
    if obj not in OBJECTIVES:
        raise InputError(f"{where}: objective must be ar or mdm (got {merged.get('objective')!r})")
    N, U, tps = (_number(merged, k, where) for k in ("n_params", "unique_tokens", "tokens_per_step"))
    evals = [(e["step"], e["val_loss"]) for e in evals if e["step"] > 0]
    steps = np.array([s for s, _ in evals], dtype=float)
    best = np.minimum.accumulate(np.array([l for _, l in evals]))
    D = steps * tps
    total = config.get("total_steps")  # a log cut off before its planned end is not the run's result
    return {"name": merged.get("name") or run_name(row["log"]), "log": row["log"], "objective": obj,
            "N": N, "U": U, "tokens_per_step": tps, "step": steps, "D": D, "C": 6 * N * D, "best": best,
            "complete": not total or (len(steps) > 0 and steps[-1] >= float(total))}


# ------------------------------------------------------------------------------------------------ output

def fmt(x):
    return f"{x:.4g}"


def draw_scaling(plt, runs, fronts, curves, cross):
    colors = {"ar": "tab:blue", "mdm": "tab:red"}
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for obj in OBJECTIVES:
        rs = [r for r in runs if r["objective"] == obj]
        if not rs:
            continue
        ax.scatter(np.concatenate([r["C"] for r in rs]), np.concatenate([r["best"] for r in rs]), s=4, alpha=0.25,
                   color=colors[obj])
        for U, (C, L) in curves.get(obj, {}).items():
            fr = fronts.get((obj, U), [])
            ax.step([p[0] for p in fr], [p[1] for p in fr], where="post", color=colors[obj], lw=2,
                    label=f"{obj.upper()} Pareto (data), U={U:.3g}")
            ax.plot(C, L, "--", color=colors[obj], lw=1, label=f"{obj.upper()} fit, U={U:.3g}")
    for U, xs in cross.items():
        for x in xs:
            ax.axvline(x["C"], color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs C = 6 N D")
    ax.set_ylabel("best validation loss so far (nats/token)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring (head -40 scripts/fit_scaling.py) for the law, "
                                        "the manifest columns and the fit method.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="*", help="JSONL logs with a 'config' line (runs not listed in the manifest)")
    ap.add_argument("--manifest", help="CSV or JSON run manifest (columns in the docstring)")
    ap.add_argument("--out", default="scaling_fit", help="output folder (default scaling_fit)")
    ap.add_argument("--fit-points", choices=("final", "all"), default="final",
                    help="fit each run's last eval point (default) or every eval point")
    ap.add_argument("--unique", type=float, action="append",
                    help="U for the critical-compute search (repeatable; default: every U in the runs)")
    ap.add_argument("--cmin", type=float, default=1e15, help="lowest C of the crossing search (default 1e15)")
    ap.add_argument("--cmax", type=float, default=1e24, help="highest C of the crossing search (default 1e24)")
    ap.add_argument("--huber-delta", type=float, default=HUBER_DELTA, help="Huber delta on log loss (default 1e-3)")
    args = ap.parse_args(argv)
    if MISSING:
        print(f"error: {MISSING}", file=sys.stderr)
        return 1
    try:
        if not args.manifest and not args.logs:
            raise InputError("give --manifest and/or log files (see --help)")
        if not (0 < args.cmin < args.cmax):
            raise InputError("--cmin must be positive and below --cmax")
        rows = read_manifest(args.manifest) if args.manifest else []
        rows += [{"log": p} for p in args.logs]
        runs = [build_run(r) for r in rows]
        for r in runs:
            if not r["complete"]:
                print(f"note: {r['name']} ends at step {int(r['step'][-1]) if len(r['step']) else 0} before its "
                      f"planned end: left out", file=sys.stderr)
        runs = [r for r in runs if r["complete"]]
        fits, fronts = {}, {}
        for obj in OBJECTIVES:
            rs = [r for r in runs if r["objective"] == obj]
            if not rs:
                continue
            sizes = sorted(set(r["N"] for r in rs))
            if len(sizes) < 2:  # A, alpha and R_N* would be fitted to nothing: refuse rather than print them
                raise InputError(f"the {obj} runs have one model size (N = {sizes[0]:.4g}): the law's N terms cannot "
                                 f"be fitted; give runs of at least two sizes per objective (a one-size experiment "
                                 f"is scripts/plot_crossover.py's)")
            sel = (lambda r: slice(len(r["D"]) - 1, None)) if args.fit_points == "final" else (lambda r: slice(None))
            cols = {k: np.concatenate([np.broadcast_to(r[k], r["D"].shape)[sel(r)] for r in rs]) for k in ("N", "D", "U")}
            L = np.concatenate([r["best"][sel(r)] for r in rs])
            p, obj_val, rmse = fit_law(cols["N"], cols["D"], cols["U"], L, args.huber_delta)
            fits[obj] = {"params": p, "huber": obj_val, "log_rmse": rmse, "points": int(len(L)), "runs": len(rs)}
            for U in sorted(set(r["U"] for r in rs)):  # the paper's frontiers are per unique-token budget
                fronts[(obj, U)] = empirical_pareto([(c, l, r["name"], int(s)) for r in rs if r["U"] == U
                                                     for c, l, s in zip(r["C"], r["best"], r["step"])])
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    Us = sorted(set(args.unique or [r["U"] for r in runs]))
    cross, curves = {}, {}
    Cplot = np.logspace(math.log10(args.cmin), math.log10(args.cmax), 120)
    for obj, f in fits.items():
        curves[obj] = {U: (Cplot, fitted_frontier(f["params"], Cplot, U)[0]) for U in Us}
        for U in Us:
            f.setdefault("N_opt", {})[f"{U:.6g}"] = float(np.exp(log_n_opt(U, *(f["params"][k] for k in ("A", "B", "alpha", "beta")))))
    if len(fits) == 2:
        for U in Us:
            cross[U] = crossings(fits["ar"]["params"], fits["mdm"]["params"], U, args.cmin, args.cmax)

    os.makedirs(args.out, exist_ok=True)
    lines = ["# Data-constrained scaling-law fit", "",
             f"Fit points: {args.fit_points}; Huber delta {args.huber_delta:g} on log loss.", "",
             "| objective | runs | points | " + " | ".join(PARAM_NAMES) + " | log-RMSE |",
             "|---|---|---|" + "---|" * len(PARAM_NAMES) + "---|"]
    for obj, f in fits.items():
        lines.append(f"| {obj} | {f['runs']} | {f['points']} | " + " | ".join(fmt(f["params"][k]) for k in PARAM_NAMES)
                     + f" | {f['log_rmse']:.2e} |")
    lines += ["", "## Critical compute (fitted frontiers cross)", ""]
    if len(fits) < 2:
        lines.append("needs both objectives")
    for U, xs in cross.items():
        if not xs:
            lines.append(f"- U = {U:.4g}: no crossing in [{args.cmin:.3g}, {args.cmax:.3g}] FLOPs")
        for x in xs:
            lines.append(f"- U = {U:.4g}: C_crit = {x['C']:.4g} FLOPs ({x['better_above'].upper()} better above)")
    lines += ["", "## Empirical Pareto frontier (best val loss at <= C)", "", "| objective | U | C | loss | run | step |",
              "|---|---|---|---|---|---|"]
    for (obj, U), fr in fronts.items():
        lines += [f"| {obj} | {U:.4g} | {c:.4g} | {l:.4f} | {run} | {s} |" for c, l, run, s in fr]
    with open(os.path.join(args.out, "fit_results.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "pareto.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["objective", "U", "C", "best_val_loss", "run", "step"])
        for (obj, U), fr in fronts.items():
            w.writerows([obj, f"{U:.6g}", f"{c:.6g}", f"{l:.6f}", run, s] for c, l, run, s in fr)
    with open(os.path.join(args.out, "points.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "objective", "N", "U", "step", "D", "C", "best_val_loss", "fitted_loss"])
        for r in runs:
            pred = predict(fits[r["objective"]]["params"], r["N"], r["D"], r["U"])
            w.writerows([r["name"], r["objective"], f"{r['N']:.6g}", f"{r['U']:.6g}", int(s), f"{d:.6g}", f"{c:.6g}",
                         f"{l:.6f}", f"{q:.6f}"] for s, d, c, l, q in zip(r["step"], r["D"], r["C"], r["best"], pred))
    with open(os.path.join(args.out, "fit_results.json"), "w") as fh:
        json.dump({"fits": fits, "crossings": {f"{U:.6g}": xs for U, xs in cross.items()},
                   "fit_points": args.fit_points}, fh, indent=1)
    note = save_plot(os.path.join(args.out, "scaling.png"), lambda plt: draw_scaling(plt, runs, fronts, curves, cross))

    for obj, f in fits.items():
        p = f["params"]
        print(f"{obj:3s}: " + "  ".join(f"{k}={fmt(p[k])}" for k in PARAM_NAMES)
              + f"  ({f['runs']} runs, {f['points']} points, log-RMSE {f['log_rmse']:.2e})")
    for obj, f in fits.items():
        print(f"R_D* ({obj}) = {f['params']['R_D*']:.4g}")
    for U, xs in cross.items():
        print(f"U={U:.4g}: " + ("; ".join(f"C_crit={x['C']:.4g} FLOPs ({x['better_above'].upper()} better above)"
                                          for x in xs) or f"no crossing in [{args.cmin:.3g}, {args.cmax:.3g}] FLOPs"))
    print(f"wrote {args.out}/fit_results.md, fit_results.json, pareto.csv, points.csv; {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

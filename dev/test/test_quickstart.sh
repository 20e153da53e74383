#!/usr/bin/env bash
# scripts/quickstart.sh's choice of path, with a fake nvidia-smi: a GPU older than sm_80, or one without a CUDA
# toolkit to build for it, runs the CPU comparison and says why (here cut to 1 step per objective by the flags the
# script passes on); the table's best loss, step and epochs are the logs' own.
set -u
cd "$(dirname "$0")/../.."
source dev/test/lib.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
fake_gpu() {  # fake_gpu NAME CAP: an nvidia-smi that reports one GPU
    fake_program "$tmp/bin/nvidia-smi" "case \"\$*\" in -L) echo \"GPU 0: $1\";; *compute_cap*) echo \"$2\";; *) echo \"$1\";; esac"
}
quick=(--steps 2 --eval-every 1 --eval-samples 2)

fake_gpu "Tesla T4" 7.5
out=$(PATH="$tmp/bin:$PATH" OUT="$tmp/t4" bash scripts/quickstart.sh "${quick[@]}" 2>&1) && ok || bad "T4: $out"
has "$out" "Tesla T4 (sm_75) found; the CUDA kernels need sm_80 or newer: running the same comparison with the CPU reference"
# The table row of AR: best validation of the log, its step, and the epoch count at that step.
want=$(/usr/bin/python3 -c "
import json
r = [json.loads(l) for l in open('$tmp/t4/ar.jsonl')]
b = min((x for x in r if x['kind'] == 'eval'), key=lambda x: x['val_loss'])
e = max(x['epoch'] for x in r if x['kind'] == 'train' and x['step'] <= b['step'])
print(f\"NLL  {b['val_loss']:.4f}\", b['step'], f\"{e:.2f}\")")
read -r _ loss step epoch <<<"$want"
grep -Eq "^AR +NLL  $loss +$step +$epoch$" <<<"$out" && ok || bad "AR row: want '$want' in: $(grep '^AR' <<<"$out")"
grep -Eq "^MDM +ELBO [0-9.]+ \+- [0-9.]+ \(K=4\)" <<<"$out" && ok || bad "MDM row: $(grep '^MDM' <<<"$out")"
has "$out" "== AR"; has "$out" "== MDM"

fake_gpu "NVIDIA H100 80GB HBM3" 9.0
out=$(PATH="$tmp/bin:$PATH" NVCC=/nonexistent/nvcc OUT="$tmp/h100" bash scripts/quickstart.sh "${quick[@]}" 2>&1) &&
    ok || bad "no nvcc: $out"
has "$out" "NVIDIA H100 80GB HBM3 found, but no CUDA toolkit (nvcc) to build for it: running the same comparison"
finish

#!/usr/bin/env bash
# Ours against one reference anchor in own processes, alternating (nothing else should run meanwhile):
#   tools/anchors/pairs.sh PYTHON TMM MODE PRECISION [ROUNDS]
#   PYTHON     the reference environment's interpreter (tools/anchors/README.md)
#   TMM        the folder holding TorchMultimodal's torchmultimodal package
#   MODE       dynamic (text padded to 24 tokens) or tutorial (512)
#   PRECISION  bf16: ours train + inference against torch.compile bf16;
#              int8: ours inference against ONNX Runtime int8
# Each round runs ours (`./mm4j bench ... --repeats 5`), then the anchor (bench_anchors.py, median of 6 after warm-up).
set -euo pipefail
python=$1; tmm=$2; mode=$3; precision=$4; rounds=${5:-3}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
case "$mode" in dynamic) len=24 ;; tutorial) len=512 ;; *) echo "mode: dynamic or tutorial, not $mode" >&2; exit 2 ;; esac
case "$precision" in
  bf16) ours=(--precision bf16); anchor=compile-bf16 ;;
  int8) ours=(--skip-train --precision int8); anchor=ort-int8 ;;
  *) echo "precision: bf16 or int8, not $precision" >&2; exit 2 ;;
esac
for i in $(seq 1 "$rounds"); do
  echo "== round $i: ours ($mode, $precision), load $(cut -d' ' -f1 /proc/loadavg)"
  "$root/mm4j" bench --modes "$mode" "${ours[@]}" --batch-sizes 2 --repeats 5 --threads 2 2>&1 | grep -E "^$mode"
  echo "== round $i: $anchor, load $(cut -d' ' -f1 /proc/loadavg)"
  (cd "$here" && TMM_PATH="$tmm" OMP_NUM_THREADS=2 "$python" bench_anchors.py "$anchor" "$len" 6 2>/dev/null | tail -1)
done

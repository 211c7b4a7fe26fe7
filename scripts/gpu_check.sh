#!/usr/bin/env bash
# On the GPU machine (device tool), after scripts/gpu_check_prepare.sh here: the CUDA paths and
# the timings issue 15 asks for, in one call under 10 minutes. Writes $OUT/gpu_check.json and
# the logs. DEVICE=cpu SMOKE=1 runs the same steps on a sample here (NOT a measurement).
#   1. the CUDA tests (fp16 loss scaling) and the precision / data-parallel suites;
#   2. the main job (configs/fdu_mtl_tfidf_mlp.yaml, 1 seed) in fp32 and bf16;
#   3. the quick 20 Newsgroups study (its models-side-by-side engine on the GPU);
#   4. one epoch of the FDU-MTL BiLSTM, hard sharing (trained 50-d embeddings: no GloVe there).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-check-out}"; mkdir -p "$OUT"
DEVICE="${DEVICE:-cuda}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:$PWD/.gpudata/site${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
data=$(mktemp -d); tar xzf .gpudata/data.tgz -C "$data"; export TEXTMTL_DATA_DIR="$data"
sample=()
if [ "${SMOKE:-0}" = 1 ]; then sample=(--set 'max_rows={train: 64, dev: 32, test: 32}' --set training.max_epochs=1); fi
runs=$(mktemp -d)
timed() {  # name, command...: wall seconds into $OUT/times.txt, output into $OUT/<name>.log
  local name=$1; shift; local start=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  echo "$name rc=$rc seconds=$(awk "BEGIN {print $(date +%s.%N) - $start}")" | tee -a "$OUT/times.txt"
}
$PY -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())" | tee "$OUT/device.txt"
timed tests $PY -m pytest -q -p no:cacheprovider tests/core/test_precision.py tests/core/test_data_parallel.py
for precision in fp32 bf16; do
  timed "main_job_$precision" $PY -m textmtl run configs/fdu_mtl_tfidf_mlp.yaml --set seeds=[1] --set baselines=[] \
    --set training.device="$DEVICE" --set training.precision=$precision "${sample[@]}" --output-dir "$runs/$precision" --no-progress
done
quick=(--quick); [ "${SMOKE:-0}" = 1 ] && quick=(--quick --pairs 2)
timed study_quick $PY -m textmtl study 20ng "${quick[@]}" --device "$DEVICE" --db "$runs/study.sqlite" --out "$runs/study"
timed bilstm_epoch $PY -m textmtl run configs/fdu_mtl_bilstm_glove.yaml --set features.embeddings=null \
  --set 'methods=[hard]' --set training.max_epochs=1 --set seeds=[1] --set baselines=[] \
  --set training.device="$DEVICE" "${sample[@]}" --output-dir "$runs/bilstm" --no-progress
# the runs' own timings (seconds per epoch of every method) beside the wall times
$PY - "$runs" "$OUT" <<'PY'
import json, sys, pathlib
runs, out = map(pathlib.Path, sys.argv[1:])
found = {str(p.relative_to(runs)): json.loads(p.read_text()).get("timings") for p in runs.glob("**/meta.json")}
times = dict(line.split(" ", 1) for line in (out / "times.txt").read_text().splitlines())
(out / "gpu_check.json").write_text(json.dumps({"wall": times, "run_timings": found}, indent=1))
print(json.dumps({"wall": times}, indent=1))
PY

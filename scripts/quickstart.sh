#!/usr/bin/env bash
# Set up, then run the main job on the bundled sample: the Beam pipeline (the in-process
# FnApiRunner, the engine behind the DirectRunner and the fastest local mode on a corpus this
# small), then n-gram baselines and a small GRU trained from its shards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# shellcheck disable=SC1091
. "${VENV:-.venv}/bin/activate"
DATA=${DATA:-out/sample}
RUN=${RUN:-runs/sample}
python -m beam_jobs.prepare --input data/sample/ja_sample.jsonl.gz --output "$DATA" \
  --val-fraction 0.1 --overwrite --runner FnApiRunner
python -m lm.train --data "$DATA" --out "$RUN" --max-steps "${MAX_STEPS:-300}" --hidden 256 \
  --eval-every 100 --no-progress
python -m lm.generate --checkpoint "$RUN/checkpoint.pt" --prompt "Python の" --max-new-tokens 80 --strategy sample \
  --temperature 0.8 --top-p 0.95
echo
echo "prepared corpus : $DATA  (manifest.json, train/ val/ shards, vocab.json, ngrams/, stats.json, report/*.png)"
echo "language model  : $RUN   (metrics.json, checkpoint.pt, loss.png, perplexity.png, bigram_heatmap.png)"

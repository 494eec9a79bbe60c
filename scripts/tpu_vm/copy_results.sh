#!/usr/bin/env bash
# Copies a run's workdir from the bucket to a local directory.
#   RUN=zs1 scripts/tpu_vm/copy_results.sh [destination, default runs/$RUN]
# SKIP_CHECKPOINTS=1 leaves checkpoints/ and best/ in the bucket.
source "$(dirname "$0")/common.sh"
require_bucket
: "${RUN:?set RUN to the run name given to launch.sh}"
DEST="${1:-runs/$RUN}"
mkdir -p "$DEST"
if [[ "${SKIP_CHECKPOINTS:-0}" == 1 ]]; then
  for name in config.json vocab.json metrics.jsonl results.json samples.txt; do
    gcloud storage cp "$BUCKET/runs/$RUN/$name" "$DEST/" || true
  done
  gcloud storage cp --recursive "$BUCKET/runs/$RUN/tensorboard" "$DEST/" || true
else
  gcloud storage cp --recursive "$BUCKET/runs/$RUN/*" "$DEST/"
fi
echo "copied $BUCKET/runs/$RUN -> $DEST"

#!/usr/bin/env bash
# Starts training on every worker at once, in the background (nohup), with
# RNNLM_JAX_DISTRIBUTED=1 so jax.distributed.initialize() finds the other hosts.
#   RUN=zs1 scripts/tpu_vm/launch.sh experiments/zaremba_small/config.py [--config.key=value ...]
# Workdir: $BUCKET/runs/$RUN (shared by all hosts; Orbax saves there collectively).
# Log: ~/rnnlm_jax_$RUN.log on each worker (scripts/tpu_vm/tail.sh shows worker 0's).
source "$(dirname "$0")/common.sh"
require_bucket
if [[ $# -lt 1 ]]; then
  echo "usage: RUN=<name> $0 experiments/<name>/config.py [--config.key=value ...]" >&2
  exit 2
fi
CONFIG="$1"; shift
: "${RUN:=$(basename "$(dirname "$CONFIG")")}"
WORKDIR="$BUCKET/runs/$RUN"
LOG="\$HOME/rnnlm_jax_$RUN.log"
printf -v EXTRA ' %q' "$@"

# Only python is backgrounded, with every stream redirected, so ssh returns at once.
on_all_workers "cd ~/$REPO_DIR && . $VENV/bin/activate && \
{ RNNLM_JAX_DISTRIBUTED=1 nohup python -m rnnlm_jax.experiment train \
--config $CONFIG --workdir $WORKDIR$EXTRA > $LOG 2>&1 < /dev/null & } && \
echo \"worker \$(hostname): pid \$! log $LOG\""
echo "workdir: $WORKDIR"

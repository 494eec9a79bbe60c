#!/usr/bin/env bash
# Follows the training log of worker 0 (process 0 logs metrics; all log errors).
#   RUN=zs1 scripts/tpu_vm/tail.sh          WORKER=3 RUN=zs1 scripts/tpu_vm/tail.sh
source "$(dirname "$0")/common.sh"
: "${RUN:?set RUN to the run name given to launch.sh}"
: "${WORKER:=0}"
: "${TAIL_LINES:=50}"
tpu ssh --worker="$WORKER" --command="tail -n $TAIL_LINES -F \$HOME/rnnlm_jax_$RUN.log"

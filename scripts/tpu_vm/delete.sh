#!/usr/bin/env bash
# Deletes the TPU VM slice (the bucket and its runs are kept).
#   scripts/tpu_vm/delete.sh            (asks to confirm; add --quiet to skip)
source "$(dirname "$0")/common.sh"
tpu delete "$@"

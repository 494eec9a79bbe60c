#!/usr/bin/env bash
# Creates the TPU VM slice $TPU_NAME ($ACCELERATOR_TYPE, software $TPU_VERSION) in $ZONE.
#   scripts/tpu_vm/create.sh [extra gcloud flags, e.g. --spot or --preemptible]
source "$(dirname "$0")/common.sh"
tpu create --accelerator-type="$ACCELERATOR_TYPE" --version="$TPU_VERSION" "$@"
tpu describe --format='value(state,acceleratorType,networkEndpoints[].ipAddress)'

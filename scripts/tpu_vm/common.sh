# Shared settings of the TPU VM scripts; sourced by each of them.
# Override any of these in the environment, e.g.
#   TPU_NAME=lm-v4 ZONE=us-central2-b ACCELERATOR_TYPE=v4-16 PROJECT=my-proj \
#   BUCKET=gs://my-bucket scripts/tpu_vm/create.sh
set -euo pipefail

: "${TPU_NAME:=rnnlm-jax}"
: "${ZONE:=us-central2-b}"
: "${ACCELERATOR_TYPE:=v4-8}"
: "${TPU_VERSION:=tpu-ubuntu2204-base}"   # the TPU VM software version (runtime image)
: "${PROJECT:=$(gcloud config get-value project 2>/dev/null)}"
: "${BUCKET:=}"                            # gs://bucket (runs go to $BUCKET/runs/<name>)
: "${REPO_DIR:=rnnlm_jax}"                 # checkout path on every worker (under ~)
: "${VENV:=\$HOME/rnnlm_jax_venv}"          # virtualenv on every worker (expanded there)

# `gcloud compute tpus tpu-vm ...` with the name, zone and project filled in.
tpu() {
  local verb=$1; shift
  gcloud compute tpus tpu-vm "$verb" "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" "$@"
}

# Runs a shell command on every worker of the slice, at once.
on_all_workers() {
  tpu ssh --worker=all --command="$1"
}

require_bucket() {
  if [[ "$BUCKET" != gs://* ]]; then
    echo "error: set BUCKET=gs://<bucket> (multi-host runs need a workdir every host can see)" >&2
    exit 2
  fi
}

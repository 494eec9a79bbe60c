#!/usr/bin/env bash
# Copies this checkout to every worker, then makes a venv there with jax[tpu],
# requirements.txt and gcsfs (etils.epath's gs:// backend when TensorFlow is absent).
#   scripts/tpu_vm/setup.sh
# With REPO_URL set, workers `git clone`/`git pull` it (branch REPO_BRANCH) instead of the copy.
source "$(dirname "$0")/common.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
: "${REPO_URL:=}"
: "${REPO_BRANCH:=main}"

if [[ -n "$REPO_URL" ]]; then
  on_all_workers "if [ -d ~/$REPO_DIR/.git ]; then git -C ~/$REPO_DIR pull --ff-only; \
else git clone --branch $REPO_BRANCH $REPO_URL ~/$REPO_DIR; fi"
else
  archive="$(mktemp -t rnnlm_jax.XXXXXX).tar.gz"
  trap 'rm -f "$archive"' EXIT
  tar -C "$ROOT" --exclude=.git --exclude=.venv --exclude='experiments/*/workdir' \
      --exclude=__pycache__ -czf "$archive" .
  tpu scp "$archive" "rnnlm_jax_src.tar.gz" --worker=all
  on_all_workers "mkdir -p ~/$REPO_DIR && tar -xzf ~/rnnlm_jax_src.tar.gz -C ~/$REPO_DIR \
&& rm ~/rnnlm_jax_src.tar.gz"
fi

on_all_workers "set -e; python3 -m venv $VENV && . $VENV/bin/activate \
&& pip install -q --upgrade pip \
&& pip install -q 'jax[tpu]' -r ~/$REPO_DIR/requirements.txt gcsfs \
&& python -c 'import jax; print(jax.process_index(), jax.device_count(), jax.devices()[0].platform)'"

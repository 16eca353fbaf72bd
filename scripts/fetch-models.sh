#!/usr/bin/env bash
# Fetches the speech model files when one is missing. `make run` and `make test` call it with
# the command that runs hark, e.g. `scripts/fetch-models.sh cargo run --bin hark --`.
# `hark models fetch` checks every file it finds and downloads only what is missing or damaged;
# this script only spares building hark when all three files are there.
set -euo pipefail
dir="${HARK_SPEECH_MODELS_DIR:-models}"
for f in ggml-tiny.en-q8_0.bin silero_vad.onnx libonnxruntime.so; do
  if [ ! -f "$dir/$f" ]; then
    exec "$@" models fetch --dir "$dir"
  fi
done

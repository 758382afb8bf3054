# syntax=docker/dockerfile:1.7
# One image for every Sluice role; the command picks the role (serve, ingest, process, api, setup).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# librdkafka is built from source (rdkafka's bundled build): the toolchain image has gcc and make.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sluice \
    && install -Dm755 target/release/sluice /out/sluice

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/sluice --create-home sluice
COPY --from=build /out/sluice /usr/local/bin/sluice
USER sluice
WORKDIR /var/lib/sluice
ENV SLUICE_LISTEN=0.0.0.0:8080 \
    SLUICE_DATA_DIR=/var/lib/sluice \
    SLUICE_LOG__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=6 \
    CMD curl -fsS http://127.0.0.1:8080/ready >/dev/null || exit 1
ENTRYPOINT ["sluice"]
CMD ["serve"]

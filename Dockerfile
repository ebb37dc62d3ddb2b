# syntax=docker/dockerfile:1
# The minim image: the server binary and the built browser app, run as an unprivileged user.
# docker-compose.yml builds it for each node; `docker build -t minim .` builds it alone.
#
# The build stage uses the project's own scripts on Debian bookworm, as scripts/run does:
# scripts/build-client installs Debian's rustc-web toolchain (ensure_rust and ensure_wasm_toolchain
# in scripts/lib.sh) and the matching wasm-bindgen-cli, and builds the app into target/web; the same
# Debian cargo then builds the server.

FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
# cargo's home: crates and the wasm-bindgen-cli that scripts/build-client installs (on PATH).
ENV CARGO_HOME=/usr/local/cargo
ENV PATH=/usr/local/cargo/bin:$PATH
# ca-certificates: cargo fetches crates over HTTPS. Everything else comes from the scripts.
RUN apt-get update \
 && apt-get install -y -q --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# The toolchain first, in a layer of its own that changes only with scripts/lib.sh.
COPY scripts/lib.sh scripts/lib.sh
RUN bash -c 'source scripts/lib.sh && ensure_rust && ensure_wasm_toolchain' \
 && rm -rf /var/lib/apt/lists/*

COPY . .
# Crates, wasm-bindgen-cli and the build directory are kept between builds (BuildKit caches), so
# the results are copied out of target/ within the same step.
RUN --mount=type=cache,target=/usr/local/cargo,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    scripts/build-client \
 && cargo build --release --locked -p minim-server --bin minim \
 && mkdir -p /out \
 && cp target/release/minim /out/minim \
 && cp -r target/web /out/web

FROM debian:bookworm-slim
# curl: the healthcheck (docker-compose.yml) asks GET /readyz.
RUN apt-get update \
 && apt-get install -y -q --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 --home-dir /var/lib/minim --shell /usr/sbin/nologin minim \
 && mkdir -p /var/lib/minim \
 && chown minim:minim /var/lib/minim
COPY --from=build /out/minim /usr/local/bin/minim
COPY --from=build /out/web /usr/share/minim/web
# A volume mounted on /var/lib/minim starts out owned by minim (Docker copies the directory's owner
# into an empty named volume). Nodes that serve the same boards share it for the generated signing
# secret, or are all given MINIM_SECRET.
ENV MINIM_WEB_DIR=/usr/share/minim/web \
    MINIM_DATA_DIR=/var/lib/minim \
    MINIM_BIND=0.0.0.0:8080
USER 10001:10001
WORKDIR /var/lib/minim
EXPOSE 8080
# SIGTERM (docker stop) tells connected clients to reconnect and exits cleanly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/minim"]

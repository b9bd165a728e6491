# The `flow` binary (CLI, server, worker) for docker-compose.yml. It compiles only the crates the
# CLI needs: no Tauri, no WebKitGTK.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# libdbus: the local secrets store's key may live in the Secret Service (keyring).
RUN apt-get update && apt-get install -y --no-install-recommends libdbus-1-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked -p flow-cli

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libdbus-1-3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/flow /usr/local/bin/flow
ENTRYPOINT ["flow"]

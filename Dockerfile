# latchkey in a container: built in one stage, run as a non-root user from a small image, with
# its data (SQLite database, master key, mail outbox) in a volume.
#   docker build -t latchkey .
#   docker run -p 8080:8080 -v latchkey-data:/data -e LATCHKEY_SERVER__ISSUER=https://id.example.com latchkey
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/latchkey

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin latchkey \
    && mkdir -p /data && chown latchkey /data && chmod 0700 /data
COPY --from=build /src/target/release/latchkey /usr/local/bin/latchkey
USER latchkey
VOLUME ["/data"]
ENV LATCHKEY_SERVER__DATA_DIR=/data LATCHKEY_SERVER__BIND=0.0.0.0:8080
EXPOSE 8080
# Orchestrators probe GET /healthz (alive) and GET /readyz (can serve). docker stop sends
# SIGTERM: requests in flight finish, the database is checkpointed, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]

# MCP Multiplayer: one static-ish binary on a slim base.
#   docker build -t mcp-multiplayer .
#   docker run -p 8100:8100 -v mcp-data:/data -e MCP_PUBLIC_URL=https://mcp.example.com mcp-multiplayer
# Put a TLS terminator in front and set MCP_PUBLIC_URL to the URL clients use.
#
# Bot code runs in worker processes that are this same binary (`mcp-multiplayer bot-worker`,
# started through /proc/self/exe), so the one file below is all the image needs. Each worker
# installs its own seccomp filter and rlimits; Docker's default seccomp profile allows that
# (seccomp, prctl(PR_SET_NO_NEW_PRIVS), setrlimit, setpriority to a lower priority). Under a
# custom profile, allow those four, or the server refuses to start and says why.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mcp-multiplayer \
 && cp target/release/mcp-multiplayer /usr/local/bin/mcp-multiplayer

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data mcp \
 && mkdir -p /data && chown mcp /data
COPY --from=build /usr/local/bin/mcp-multiplayer /usr/local/bin/mcp-multiplayer
USER mcp
ENV MCP_LISTEN=0.0.0.0:8100 \
    MCP_DATA_DIR=/data \
    MCP_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8100
STOPSIGNAL SIGTERM
ENTRYPOINT ["mcp-multiplayer"]
CMD ["serve"]

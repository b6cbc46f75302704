# The work4life image: one binary, every service (pick them with --target or W4L_TARGET).
#   docker build -t work4life .
#   docker run --rm -p 127.0.0.1:50051:50051 work4life --target=all serve
# The build needs no database: sqlx reads the committed .sqlx/ query data (SQLX_OFFLINE=true).

# ---- builder ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /app
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

# 1. Dependencies only. Copy the manifests, give every workspace member a stub source, and
#    build: this layer is reused until a Cargo.toml, Cargo.lock or .cargo/config.toml changes.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY crates/proto/Cargo.toml crates/proto/
COPY crates/platform/Cargo.toml crates/platform/
COPY crates/work4life/Cargo.toml crates/work4life/
COPY crates/bench/Cargo.toml crates/bench/
COPY services/identity/Cargo.toml services/identity/
COPY services/intake/Cargo.toml services/intake/
COPY services/grants/Cargo.toml services/grants/
COPY services/coaching/Cargo.toml services/coaching/
COPY services/notifications/Cargo.toml services/notifications/
COPY tests/Cargo.toml tests/
# Library members get an empty lib.rs, binary members an empty main. The proto crate gets an
# empty build.rs so its build-dependencies (protox, tonic-prost-build) are cached here too.
RUN set -eu; \
    for lib in crates/proto crates/platform services/identity services/intake services/grants \
               services/coaching services/notifications tests; do \
        mkdir -p "$lib/src"; : > "$lib/src/lib.rs"; \
    done; \
    for bin in crates/work4life crates/bench; do \
        mkdir -p "$bin/src"; echo 'fn main() {}' > "$bin/src/main.rs"; \
    done; \
    echo 'fn main() {}' > crates/proto/build.rs; \
    cargo build --release --locked -p work4life

# 2. The real sources. crates/proto/build.rs reads ../../proto and ../../third_party, so both
#    come in before the build; .sqlx holds the compile-time query data.
COPY proto proto
COPY third_party third_party
COPY .sqlx .sqlx
COPY crates crates
COPY services services
COPY tests tests
# COPY keeps the files' original times, which can be older than the stub build: touch every
# source so cargo rebuilds the workspace crates instead of reusing the stubs.
RUN set -eu; \
    find crates services tests -name '*.rs' -exec touch {} +; \
    cargo build --release --locked -p work4life; \
    cp target/release/work4life /work4life

# ---- runtime ---------------------------------------------------------------------------------
# distroless/cc: glibc and libgcc only, no shell, runs as the nonroot user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /work4life /usr/local/bin/work4life
USER 65532:65532
# The binary's default listen address is loopback, which is unreachable from outside a container.
ENV W4L_LISTEN_ADDR=0.0.0.0:50051
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/work4life"]
CMD ["--target=all", "serve"]

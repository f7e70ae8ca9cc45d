# syntax=docker/dockerfile:1
#
# One image with the three stampede binaries: stampede-master, stampede-worker and
# stampede-workload-server (each pod of the Helm chart runs one of them by its command).
#
#   docker build -t stampede .                                  # this machine's arch
#   docker buildx build --platform linux/amd64,linux/arm64 \
#       -t REGISTRY/stampede:0.1.0 --push .                     # both, one manifest list
#
# The build stage runs on the build machine's own arch and cross-compiles for the target's, so
# a multi-arch build needs no emulation. Every dependency is pure Rust (the gRPC code is
# generated with protox, no protoc), so a cross linker is all the cross build needs.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ARG TARGETARCH
ARG BUILDARCH
# Linkers by target; the native one is the image's own gcc under its triplet name.
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TERM_COLOR=never
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; gcc=gcc-x86-64-linux-gnu ;; \
      arm64) triple=aarch64-unknown-linux-gnu; gcc=gcc-aarch64-linux-gnu ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH': build linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "$gcc" "libc6-dev-$TARGETARCH-cross"; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    rustup target add "$triple"; \
    echo "$triple" > /rust-target

WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=stampede-target-${TARGETARCH} \
    set -eux; \
    triple="$(cat /rust-target)"; \
    cargo build --release --locked --target "$triple" \
      --bin stampede-master --bin stampede-worker --bin stampede-workload-server; \
    mkdir -p /out; \
    for bin in stampede-master stampede-worker stampede-workload-server; do \
      cp "target/$triple/release/$bin" /out/; \
    done

# glibc and libgcc from Debian 12, as the builder links against; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# nonroot: uid and gid 65532, as the chart's securityContext expects.
USER 65532:65532
WORKDIR /home/nonroot
# gRPC (master), metrics (master), HTTP (workload server).
EXPOSE 5557 9557 8080
CMD ["stampede-master", "--help"]

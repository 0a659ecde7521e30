# The anchord image the Helm chart runs (helm/anchord: image.repository).
# The one binary on Debian slim, run as the non-root user the chart's
# securityContext expects (65532), with the Noto CJK font the PDF
# preservation certificate embeds and CA certificates for tooling in the
# image (the binary's HTTPS client carries its own webpki roots).
#
#   docker build -t anchord/anchord:0.1.0 .
#
# Not built in CI: the CI machines have no container runtime. What CI does
# check is the same `cargo build --release -p anchord` (scripts/demo) and
# the chart that runs the image (anchord/tests/helm_chart.rs).

FROM rust:1.95-bookworm AS build
# rdkafka-sys builds librdkafka from source (make, perl and a C compiler
# are in the rust image).
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p anchord \
 && install -D -m 0755 target/release/anchord /out/anchord

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 anchord \
 && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin anchord
COPY --from=build /out/anchord /usr/local/bin/anchord
USER 65532:65532
# The admin listener (metrics, livez, readyz); the API ports are per stage.
EXPOSE 9464
ENTRYPOINT ["anchord"]
CMD ["--help"]

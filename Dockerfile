# Ferry: a multi-stage build. The runtime image holds only the binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ferry && strip target/release/ferry

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/ferry --create-home ferry
COPY --from=build /src/target/release/ferry /usr/local/bin/ferry
USER ferry
WORKDIR /var/lib/ferry
ENV FERRY_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["ferry"]
CMD ["serve", "--data-dir", "/var/lib/ferry/data"]

# One image for every eventmill service (api, worker, or both with `run`).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The `dist` profile (Cargo.toml): release code, no debug info, symbols kept for backtraces.
RUN cargo build --profile dist --locked && cp target/dist/eventmill /usr/local/bin/eventmill

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/eventmill /usr/local/bin/eventmill
WORKDIR /app
COPY scheduler.toml ./
COPY jobs ./jobs
RUN mkdir -p /app/reports
ENV EVENTMILL_HTTP_ADDR=0.0.0.0:8080 EVENTMILL_REPORTS_DIR=/app/reports
EXPOSE 8080
ENTRYPOINT ["eventmill"]
CMD ["run"]

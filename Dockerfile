# One image for every MC Pigeon service: `pigeon serve <name>` picks the service
# (docker-compose.yml and deploy/k8s/ run it; docs/operations.md, "Deploying").
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir 'uv>=0.5'
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
COPY cli ./cli
RUN uv sync --frozen --no-dev --all-packages --no-editable

FROM python:3.11-slim
# A numeric user, so that Kubernetes' runAsNonRoot can check it.
RUN useradd --system --uid 10001 --user-group --no-create-home pigeon
COPY --from=build /app/.venv /app/.venv
WORKDIR /tmp
# Every service listens on all of the container's addresses; the ports are the defaults
# (api 8025, projector 8026, sender 8027, tracker 8028, imap-sync 8029, mcp 8030).
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIGEON_DATA_DIR=/tmp/pigeon \
    PIGEON_API_HOST=0.0.0.0 \
    PIGEON_PROJECTOR_HOST=0.0.0.0 \
    PIGEON_SENDER_HOST=0.0.0.0 \
    PIGEON_TRACKER_HOST=0.0.0.0 \
    PIGEON_IMAP_SYNC_HOST=0.0.0.0 \
    PIGEON_MCP_HOST=0.0.0.0
EXPOSE 8025 8026 8027 8028 8029 8030
USER 10001:10001
# SIGTERM is each service's clean stop (the read-only root file system leaves /tmp).
STOPSIGNAL SIGTERM
ENTRYPOINT ["pigeon"]
CMD ["serve", "api"]

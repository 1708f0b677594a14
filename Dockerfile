# One image for every MC Pigeon service: `pigeon serve <name>` picks the service.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir 'uv>=0.5'
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
COPY cli ./cli
RUN uv sync --frozen --no-dev --all-packages --no-editable

FROM python:3.11-slim
RUN useradd --system --uid 10001 pigeon
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PIGEON_API_HOST=0.0.0.0 \
    PIGEON_PROJECTOR_HOST=0.0.0.0 \
    PIGEON_SENDER_HOST=0.0.0.0 \
    PIGEON_TRACKER_HOST=0.0.0.0 \
    PIGEON_IMAP_SYNC_HOST=0.0.0.0 \
    PIGEON_MCP_HOST=0.0.0.0
USER pigeon
ENTRYPOINT ["pigeon"]
CMD ["serve", "api"]

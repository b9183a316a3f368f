# One image for every saga-compare process: workers, choreography services, the harness.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY choreography ./choreography
COPY orchestration ./orchestration
COPY harness ./harness
COPY monitor ./monitor
RUN pip install --no-cache-dir .
ENV SAGA_DATA_DIR=/data
VOLUME /data
ENTRYPOINT []
CMD ["saga-compare", "--help"]

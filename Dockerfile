# tinynode on tinynet: a mining node with its data on a volume.
#   docker build -t tinynode . && docker run -p 127.0.0.1:9999:9999 tinynode
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY tinynode ./tinynode
# Installed the way the README does it.
RUN pip install .

# The default datadir (~/.tinynode) is the volume, so `tinynode-cli` needs no flags inside.
RUN useradd --create-home --uid 1000 tinynode \
    && mkdir -p /home/tinynode/.tinynode && chown tinynode:tinynode /home/tinynode/.tinynode
USER tinynode
VOLUME ["/home/tinynode/.tinynode"]

EXPOSE 9999
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["tinynode-cli", "getblockcount"]

ENTRYPOINT ["tinynode", "--network", "tinynet", "--mine"]

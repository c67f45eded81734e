# syntax=docker/dockerfile:1
# Vigil's container image: `vigil run` by default; `vigil demo-app`, `vigil rules` and the
# other commands by giving them as the command.
#
#   docker build -t vigil .
#   docker run -p 8080:8080 -v "$PWD/vigil.yml:/etc/vigil/vigil.yml:ro" -v vigil-data:/var/lib/vigil vigil
#
# Not built by the test suite: the machines it runs on have no Docker engine.
# tests/deploy/test_deploy.py checks this file's structure instead (a non-root USER,
# HEALTHCHECK on /healthz, VOLUME, the entry point and the default command's options), and
# runs everything the image runs (the wheel's `vigil run` and `vigil demo-app`) for real.

# -- build: the wheels of Vigil and of every dependency ---------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Every dependency ships manylinux wheels: nothing is compiled, and no compiler is needed.
RUN pip wheel --wheel-dir /wheels .

# -- final: Python, the installed wheels, a non-root user --------------------------------
FROM python:3.11-slim
# numba caches compiled functions beside the package, which the user cannot write: /tmp
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache MPLCONFIGDIR=/tmp/matplotlib
# The wheels are bind-mounted for this one step (BuildKit), so none of them is left in a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels vigil
# The user vigil (uid 10001) owns the data folder. The default config, used when none is
# mounted, watches the container's host.
RUN groupadd --system --gid 10001 vigil \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/vigil --no-create-home \
       --shell /usr/sbin/nologin vigil \
    && mkdir -p /etc/vigil /var/lib/vigil \
    && printf 'host:\n  enabled: true\n' > /etc/vigil/vigil.yml \
    && chown 10001:10001 /var/lib/vigil
VOLUME ["/etc/vigil", "/var/lib/vigil"]
USER 10001:10001
WORKDIR /var/lib/vigil
EXPOSE 8080
# slim has no curl: ask /healthz with Python's urllib (a non-2xx answer or no answer raises)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["vigil"]
CMD ["run", "--config", "/etc/vigil/vigil.yml", "--data-dir", "/var/lib/vigil", "--listen", "0.0.0.0:8080"]

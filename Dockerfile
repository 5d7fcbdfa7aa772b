# One image for every service of docker-compose.yml: search.launch, search.worker, the dashboard.
#
#   docker compose build --build-arg GIT_REVISION=$(git rev-parse HEAD)
#
# torch and its CUDA libraries come from PyPI as pinned in constraints.txt (several GB: the
# PyPI wheel for Linux bundles CUDA, so the same image runs on a CPU or, with the GPU
# reservation of docker-compose.yml, on an NVIDIA GPU). For a smaller CPU-only image point pip
# at a CPU-only wheel index: --build-arg PIP_EXTRA_INDEX_URL=<index> (pip's own variable).
FROM python:3.11-slim

ARG PIP_EXTRA_INDEX_URL=""
# Recorded with every trial (trial_results.environment.git_revision); the image has no .git.
ARG GIT_REVISION=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    VLPETL_GIT_REVISION=${GIT_REVISION} \
    VLPETL_DATA_DIR=/data \
    HF_HUB_OFFLINE=1

WORKDIR /app

# Dependencies first, in their own layer: editing the code does not reinstall torch.
COPY pyproject.toml constraints.txt ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
print("\n".join(p["dependencies"] + p["optional-dependencies"]["postgres"]))' > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
    && useradd --create-home --uid 1000 vlpetl \
    && mkdir -p /data \
    && chown vlpetl:vlpetl /data

# A named volume mounted on /data starts with this folder's owner, so the user can write it.
USER vlpetl
VOLUME ["/data"]
EXPOSE 8501

CMD ["python", "-m", "search.worker", "--help"]

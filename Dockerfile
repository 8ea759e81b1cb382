# Component image of tfrs-pipeline: every task of the compiled pipeline runs in it (Kubeflow
# Pipelines, Vertex AI Pipelines) and so do Dataflow workers (--sdk_container_image).
# Build from the repository root (see docs/kubeflow.md; not buildable in the dev sandbox):
#   docker build -t REGISTRY/tfrs-pipeline:TAG . && docker push REGISTRY/tfrs-pipeline:TAG
ARG BASE_IMAGE=tensorflow/tfx:1.16.0
FROM ${BASE_IMAGE}

# requirements/lock.txt is resolved for CPython 3.11 and pins packages that require it
# (fastavro, keras, pillow, tornado, ...), while this base image's interpreter is older: TFX
# 1.16 declares Python <3.11 and its 1.15 image ships 3.10. So the project gets its own 3.11
# environment, first on PATH: compiled tasks run `python -m tfx....kubeflow_v2_run_executor`
# and the base image's Beam boot entrypoint (Beam 2.59, as locked) runs `python` too.
ARG PYTHON_VERSION=3.11.7
ARG UV_VERSION=0.13.9
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    VIRTUAL_ENV=/opt/tfrs-venv
RUN python -m pip install --no-cache-dir "uv==${UV_VERSION}" \
    && python -m uv python install "${PYTHON_VERSION}" \
    && python -m uv venv --seed --python "${PYTHON_VERSION}" "${VIRTUAL_ENV}"
# TF_USE_LEGACY_KERAS: TFRS 0.7 needs Keras 2; TF 2.16 picks Keras 3 unless it is set.
# RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT: Beam's boot would otherwise run Dataflow workers in
# a fresh venv of the base interpreter, without the project.
ENV PATH="${VIRTUAL_ENV}/bin:${PATH}" \
    TF_USE_LEGACY_KERAS=1 \
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1

# Dependencies first: this layer is rebuilt only when the lock changes. tfx and
# ml-pipelines-sdk 1.16.0 declare Python <3.11 but run on 3.11 (requirements/uv-resolve.toml).
COPY requirements/lock.txt /tmp/tfrs-src/requirements/lock.txt
RUN python -m pip install --no-cache-dir --no-deps --ignore-requires-python \
    -r /tmp/tfrs-src/requirements/lock.txt

# The project, as a regular (non-editable) install; the sources are then removed so that
# nothing shadows the installed packages.
COPY setup.py /tmp/tfrs-src/
COPY contracts /tmp/tfrs-src/contracts
COPY pipeline /tmp/tfrs-src/pipeline
COPY components /tmp/tfrs-src/components
COPY movielens /tmp/tfrs-src/movielens
COPY closed_form /tmp/tfrs-src/closed_form
COPY ranking_core /tmp/tfrs-src/ranking_core
COPY trainer_module /tmp/tfrs-src/trainer_module
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation /tmp/tfrs-src \
    && python -m pip check \
    && rm -rf /tmp/tfrs-src \
    && python -c "import trainer_module.preprocessing, components.anomalies_gate"

# tfrs-pipeline: the two commands a user needs are `make run` and `make test`.
# Both create .venv if missing and install the locked dependencies and the project;
# a stamp file keyed on the lock and setup.py makes re-runs skip the install.

PYTHON      ?= python3
VENV        ?= .venv
UV_VERSION  := 0.13.9
LOCK        := requirements/lock.txt
STAMP       := $(VENV)/.tfrs-pipeline-installed
VPY         := $(VENV)/bin/python
UV          := $(VENV)/bin/uv
RUN_ARGS    ?=
PIPELINE_ROOT ?= tfx_root
PYTEST_ARGS ?=

# TF 2.16 defaults to Keras 3, which TFRS 0.7 cannot use. The project's packages also set
# this on import; exporting it here covers tools that import TensorFlow first.
export TF_USE_LEGACY_KERAS := 1

.PHONY: setup run test lock benchmark tensorboard clean-venv help

help:
	@echo "make run        install if needed, then run the local pipeline on the built-in data"
	@echo "make test       install if needed, then run the test suite"
	@echo "make benchmark  install if needed, then run the benchmarks (benchmarks/run_all.py; results in docs/benchmarks/)"
	@echo "make tensorboard  TensorBoard on the Trainer's logs of every run (PIPELINE_ROOT=tfx_root)"
	@echo "make lock       re-resolve requirements/lock.txt from requirements/requirements.in"

setup: $(STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(UV): $(VPY)
	$(VPY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): $(UV) $(LOCK) setup.py
	$(UV) pip install --python $(VPY) --no-deps --compile-bytecode -r $(LOCK)
	$(UV) pip install --python $(VPY) --no-deps --compile-bytecode -e .
	$(VPY) -m pip check
	touch $(STAMP)

run: setup
	$(VPY) local_runner.py --pipeline_root $(PIPELINE_ROOT) $(RUN_ARGS)

test: setup
	$(VPY) -m pytest $(PYTEST_ARGS)

# Every Trainer execution's logs, one TensorBoard run per execution id.
tensorboard: setup
	$(VENV)/bin/tensorboard --logdir $(PIPELINE_ROOT)/RetrievalTrainer/model_run

benchmark: setup
	$(VPY) benchmarks/run_all.py

lock: $(UV)
	$(UV) pip compile --config-file requirements/uv-resolve.toml \
	  requirements/requirements.in --python-version 3.11 -o $(LOCK)

clean-venv:
	rm -rf $(VENV)

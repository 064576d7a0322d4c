# Start here. `make run` runs the pipeline on the bundled sample images; `make test` runs the tests.
# Both create .venv by themselves on a fresh machine (Python 3.11 or newer, packages from PyPI).
# The interpreter: the first of these that runs and is 3.11 or newer (the locks are universal: they
# hold a version and wheels for every Python from 3.11 on). PYTHON=/path/to/python picks another.
PYTHON_CANDIDATES := python3.11 python3.12 python3.13 python3
IS_311_OR_NEWER := -c 'import sys; sys.exit(sys.version_info < (3, 11))'
# Looked for once, where a recipe first needs it (the eval makes it a plain value), so that targets
# that need no interpreter start none.
PYTHON ?= $(eval PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do $$p $(IS_311_OR_NEWER) >/dev/null 2>&1 && { echo $$p; break; }; done))$(PYTHON)
# A recipe's first line: stops with one line saying what was found when PYTHON is not 3.11 or newer.
# (A pyenv shim for a version that is not installed exits non-zero, so it counts as not found.)
REQUIRE_PYTHON = @test -n "$(PYTHON)" && $(PYTHON) $(IS_311_OR_NEWER) 2>/dev/null || { found=""; \
	for p in $(PYTHON_CANDIDATES); do v=$$($$p -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
	&& found="$$found $$p=$$v"; done; \
	echo "needs Python 3.11 or newer; found:$${found:- none of $(PYTHON_CANDIDATES)}$(if $(PYTHON), (PYTHON=$(PYTHON)))"; exit 1; }
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The lock files: every package each deployment unit installs, at one version, with the hashes of
# its files. `make lock` writes them from the declarations (requirements/*.txt,
# layers/common/requirements.in, gpu_task/requirements*.txt); .venv, the GPU image
# (gpu_task/Dockerfile) and `sam build` (layers/common/requirements.txt) install from them.
DEV_LOCKS := requirements/lock/pip.txt requirements/lock/dev.txt requirements/lock/dev-nodeps.txt
LOCKS := $(DEV_LOCKS) requirements/lock/gpu.txt requirements/lock/gpu-nodeps.txt layers/common/requirements.txt
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: help venv run test test-fast lint format build deploy validate clean bench bench-gpu demo-models lock

help:
	@echo "make run      run the pipeline on the bundled sample images (local engine, no AWS)"
	@echo "make test     run all tests (make test-fast: without the ones marked slow)"
	@echo "make bench    speed figures into bench/results.json (make bench-gpu on a GPU machine)"
	@echo "make demo-models  rebuild the demo detector, classifier and sample images"
	@echo "make lint     ruff, mypy, cfn-lint, sam validate --lint, checkov"
	@echo "make build    sam build"
	@echo "make deploy   sam deploy (ENV=dev or ENV=prod, see samconfig.toml)"
	@echo "make lock     rewrite the lock files from the requirement declarations (UPGRADE=1: newest versions)"

# Rebuilt whenever a lock file changes. pip checks every file it installs against the lock's hashes
# (hash-checking mode is on for a whole pip command, so each command takes one lock).
$(STAMP): $(DEV_LOCKS)
	$(REQUIRE_PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# First the pip that can install the locks (requirements/pip.txt says why).
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/lock/pip.txt
	$(PIP) --require-hashes -r requirements/lock/dev.txt
	# yolov5 (the GPU task) and the reference implementations the tests compare with, without the
	# dependencies they declare (see requirements/dev-nodeps.txt); what they import is in dev.txt.
	$(PIP) --require-hashes --no-deps -r requirements/lock/dev-nodeps.txt
	# Our own code, editable: the three import roots and the `wildlife` command (pyproject.toml).
	$(PIP) --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

# The pipeline on the 21 bundled sample images with the demo models: the real state machine in the
# local engine, no AWS account. 7 images per shard, so the samples make three shards and the live
# view shows the detection Map at work. Results go to results/runs/<run_id>/final/.
# It installs the whole development environment, as `make test` does: what only the tests and linters
# need is 0.18 GB of the 7.1 GB (torch and its CUDA libraries are 5.5), too little for a lock of its own.
run: $(STAMP)
	$(BIN)/wildlife run demo/samples --out results --shard-size 7

# Tests run offline: fake credentials and a region, so nothing can ever reach a real account.
test: $(STAMP)
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
	AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
	$(BIN)/pytest -q

test-fast: $(STAMP)
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
	$(BIN)/pytest -q -m "not slow"

# checkov in an environment of its own: it pins an older boto3 than the SAM CLI accepts.
CHECKOV := .venv-checkov
$(CHECKOV)/.installed: requirements/lock/checkov.txt requirements/lock/pip.txt
	$(REQUIRE_PYTHON)
	test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/lock/pip.txt
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/lock/checkov.txt
	touch $@

lint: $(STAMP) $(CHECKOV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/wildlife_common functions gpu_task/wildlife_gpu wildlife
	$(BIN)/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(BIN)/sam validate --lint --template template.yaml
	# checkov on the template and on what the SAM transform makes of it (offline: --skip-download);
	# a finding fails the lint unless the resource skips it with a one-line reason (its Metadata).
	$(CHECKOV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	$(BIN)/python scripts/expand_template.py .aws-sam/expanded-template.json
	$(CHECKOV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f .aws-sam/expanded-template.json

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The bundled demo pack (demo/models, demo/samples) is committed; this rebuilds it (~30 min on 2 cores:
# the ultralytics detector and the classifier, then the detector in MegaDetector v5's format).
demo-models: $(STAMP)
	$(BIN)/python -m demo.build
	$(BIN)/python -m demo.yolov5_detector

# Speed figures, each measured side by side in one run: bench/results.json and bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python -m bench

# Only the GPU figures (FP16 images/s at 640 and 1280, end-to-end vs model-only): one short run that
# fits a GPU machine's time budget; bench/RESULTS.md says how to run it there.
bench-gpu: $(STAMP)
	$(BIN)/python -m bench --gpu

# Planning at 100k, 1M and 10M keys (10M through a stub client), incremental at 5M processed, and
# materialize at 1M and 3M images, and the fanned-out planning at 1M and 10M: ~33 min on 2 cores
# (SIZES="--sizes 100000" for one size); then a lister reading a 1M-row S3 Inventory data file in
# CSV and in Parquet (~1 min).
.PHONY: bench-scale
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale $(SIZES)
	$(BIN)/python -m bench.inventory

ENV ?= dev
# sam build packages the Lambdas for python3.12; pyenv's shim may not resolve it, so find the
# interpreter's own bin folder and put it first.
# "=": looked up only when `make build` needs it, not on every make.
PY312_BIN = $(shell p=$$(pyenv prefix 3.12 2>/dev/null) && echo "$$p/bin" || dirname "$$(command -v python3.12)")
build: $(STAMP)
	PATH="$(PY312_BIN):$$PATH" $(BIN)/sam build --config-env $(ENV)

deploy: build
	$(BIN)/sam deploy --config-env $(ENV)

# The lock files. uv resolves: it can resolve for an interpreter and platform other than its own
# (the layer runs on Lambda's python3.12 on arm64, the GPU image on Ubuntu 24.04's python3.12 on
# x86_64) and can lock the --no-deps files without their dependencies; pip installs what it writes.
# Each package gets the hashes of all its files on PyPI, for every platform. uv keeps the versions
# already in a lock unless a declaration rules them out; UPGRADE=1 takes the newest allowed.
LOCK_TOOLS := .venv-lock
UV := $(LOCK_TOOLS)/bin/uv
COMPILE = $(UV) pip compile --quiet --generate-hashes --no-strip-extras --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

$(UV): requirements/lock/tools.txt
	$(REQUIRE_PYTHON)
	test -x $(LOCK_TOOLS)/bin/python || $(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/lock/tools.txt
	touch $@

lock: $(UV)
	# The development environment (.venv), for Python 3.11 and newer on any platform: with --universal,
	# --python-version is the lowest Python the lock serves; newer ones get their own markers and wheels.
	$(COMPILE) --universal --python-version 3.11 requirements/all.txt -o requirements/lock/dev.txt
	$(COMPILE) --universal --python-version 3.11 --no-deps requirements/dev-nodeps.txt -o requirements/lock/dev-nodeps.txt
	# The GPU image: nvidia/cuda's Ubuntu 24.04 (glibc 2.39) and its python3, 3.12.
	$(COMPILE) --python-version 3.12 --python-platform x86_64-manylinux_2_39 gpu_task/requirements.txt \
		-o requirements/lock/gpu.txt
	$(COMPILE) --python-version 3.12 --no-deps gpu_task/requirements-nodeps.txt -o requirements/lock/gpu-nodeps.txt
	# The Lambda layer: python3.12 on arm64, Amazon Linux 2023 (glibc 2.34). Its lock lies beside its
	# code, where layers/common/Makefile (which sam build runs) installs the arm64 wheels from it.
	$(COMPILE) --python-version 3.12 --python-platform aarch64-manylinux_2_34 layers/common/requirements.in \
		-o layers/common/requirements.txt
	# The pip that installs the locks, and uv itself, for the next `make lock`.
	$(COMPILE) requirements/pip.txt -o requirements/lock/pip.txt
	# checkov, for make lint (Python 3.11 and newer, its own environment).
	$(COMPILE) --universal --python-version 3.11 requirements/checkov.txt -o requirements/lock/checkov.txt
	$(COMPILE) --no-deps requirements/tools.txt -o requirements/lock/tools.txt

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) $(CHECKOV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

# Start here. `make run` runs the pipeline on the bundled sample images; `make test` runs the tests.
# Both create .venv by themselves on a fresh machine (Python 3.11, packages from PyPI).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQS := requirements/all.txt requirements/dev.txt requirements/dev-nodeps.txt layers/common/requirements.txt \
	gpu_task/requirements.txt gpu_task/requirements-nodeps.txt

.PHONY: help venv run test test-fast lint format build deploy validate clean bench bench-gpu demo-models

help:
	@echo "make run      run the pipeline on the bundled sample images (local engine, no AWS)"
	@echo "make test     run all tests"
	@echo "make bench    speed figures into bench/results.json (make bench-gpu on a GPU machine)"
	@echo "make demo-models  rebuild the demo detector, classifier and sample images"
	@echo "make lint     ruff, mypy, cfn-lint, statelint, sam validate --lint"
	@echo "make build    sam build"
	@echo "make deploy   sam deploy (ENV=dev or ENV=prod, see samconfig.toml)"

$(STAMP): $(REQS)
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/all.txt
	# yolov5 (the GPU task) and the reference implementations the tests compare with, without the
	# dependencies they declare (see the files); what they import is in the files above.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements/dev-nodeps.txt
	# Our own code, editable: the three import roots and the `wildlife` command (pyproject.toml).
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

# The pipeline on the 21 bundled sample images with the demo models: the real state machine in the
# local engine, no AWS account. 7 images per shard, so the samples make three shards and the live
# view shows the detection Map at work. Results go to results/runs/<run_id>/final/.
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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/wildlife_common functions gpu_task/wildlife_gpu wildlife
	$(BIN)/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(BIN)/sam validate --lint --template template.yaml

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

ENV ?= dev
# sam build packages the Lambdas for python3.12; pyenv's shim may not resolve it, so find the
# interpreter's own bin folder and put it first.
PY312_BIN := $(shell p=$$(pyenv prefix 3.12 2>/dev/null) && echo "$$p/bin" || dirname "$$(command -v python3.12)")
build: $(STAMP)
	PATH="$(PY312_BIN):$$PATH" $(BIN)/sam build --config-env $(ENV)

deploy: build
	$(BIN)/sam deploy --config-env $(ENV)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

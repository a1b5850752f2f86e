# Two entry points for a fresh machine: `make pipeline` and `make test`. Each does its own set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sketchseg-installed
FIXTURES ?= tests/fixtures/fscoco_demo

# Telemetry off and no hub downloads, for every tool we drive.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1

.PHONY: setup browser test test-fast pipeline pipeline-small paper demo bench bench-gpu lint lock clean

setup: $(STAMP)

# Idempotent: reinstalls only when the lock file or pyproject.toml changed. The lock goes in with uv (several times
# faster than pip: parallel downloads, unpacking and bytecode compilation), or with pip when uv cannot be installed
# or fails. uv ignores pip's configuration, so it gets the wheel folders and indexes pip is configured with
# (tools/pip_sources.py: e.g. a machine's local copies of torch's CUDA wheels), none when pip names none.
UV_VERSION := 0.13.9
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if $(PY) -m pip install --isolated --disable-pip-version-check --quiet uv==$(UV_VERSION); then \
	  $(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode --index-strategy unsafe-best-match \
	    $$($(PY) tools/pip_sources.py $(PY)) -r requirements.lock \
	  || { echo "uv failed: installing with pip"; $(PY) -m pip install --quiet -r requirements.lock; }; \
	else \
	  echo "uv not installable: installing with pip"; $(PY) -m pip install --quiet -r requirements.lock; \
	fi
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The browser test (tests/test_page.py) needs Debian's Chromium and ChromeDriver: installed here when running as root
# and absent; elsewhere that test is skipped with the install command in its reason. The suite runs on TEST_WORKERS
# processes (pytest-xdist), a test file per worker at a time, the slow end-to-end files first (tests/conftest.py).
TEST_WORKERS ?= 2
test: setup browser
	$(PY) -m ruff check sketchseg tests bench flows
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

browser:
	@if [ "$$(id -u)" = 0 ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; fi

test-fast: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

# The main job: the whole pipeline on the embedded synthetic default, then the results table.
pipeline: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro
	@$(PY) -m sketchseg.pipeline
	@echo
	@echo "Next: MLflow UI: $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db  (then http://127.0.0.1:5000)"
	@echo "      plots: data/eval/*.png, or $(VENV)/bin/dvc plots show;  metrics: $(VENV)/bin/dvc metrics show"
	@echo "      segment your own sketch: $(VENV)/bin/sketchseg segment SKETCH.png --categories \"a, b\" \
	  --checkpoint data/train/models/optimal.pt -o out/"

demo: setup
	$(VENV)/bin/sketchseg segment $(FIXTURES)/sketch_1.png --categories "giraffe, zebra, grass, cloud" -o outputs/demo/sketch_1
	$(VENV)/bin/sketchseg segment $(FIXTURES)/sketch_2.png --categories "kite, tree, person" -o outputs/demo/sketch_2
	$(VENV)/bin/sketchseg segment $(FIXTURES)/sketch_3.png --categories "kite, grass, woman" -o outputs/demo/sketch_3
	$(VENV)/bin/sketchseg segment $(FIXTURES)/threshold_example.png --categories "bench, tree" --threshold 0.7 -o outputs/demo/threshold_example

# Benchmarks print JSON; ViT-B/16 ones take minutes on 2 cores.
# A CI-sized run of the same pipeline (2-3 minutes after set-up on 2 cores), as a DVC experiment.
SMALL := -S data.synth.participants=8 -S data.synth.per_participant=12 -S data.synth.objects_per_category=4 \
	-S foundation.steps=100 -S foundation.mosaics=200 -S train.epochs=2 -S train.max_steps_per_epoch=10 \
	-S eval.max_sketches=20
pipeline-small: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc exp run $(SMALL)
	@$(PY) -m sketchseg.pipeline

# The paper's run (docs/paper-setting.md): experiments/paper.yaml as the DVC experiment `paper`, on GPUs.
# PRETRAINED: a local weights file instead of the openai tag (OpenAI's ViT-B-16.pt); FSCOCO: the unpacked FSCOCO-Seg
# release (default data/fscoco); SET: more KEY=VALUE changes, e.g. SET="train.batch_size=8".
PRETRAINED ?=
FSCOCO ?=
SET ?=
paper: setup
	@flags="$$($(PY) experiments/overrides.py experiments/paper.yaml "foundation.backbone.pretrained=$(PRETRAINED)" \
	  "data.fscoco_root=$(FSCOCO)" $(SET))" && echo "dvc exp run -n paper $$flags" && \
	  eval "PATH=\"$(CURDIR)/$(VENV)/bin:\$$PATH\" $(VENV)/bin/dvc exp run -n paper $$flags"
	@$(PY) -m sketchseg.pipeline

# People's sketches (docs/people.md): experiments/real.yaml as the DVC experiment `real`. FRISS: a copy of
# FrISS (train/, val/), CBSC: a copy of CBSC (test/), both from github.com/aleynakutuk6/CAVT (datasets/data/).
FRISS ?=
CBSC ?=
real: setup
	@flags="$$($(PY) experiments/overrides.py experiments/real.yaml "data.friss_root=$(FRISS)" \
	  "data.real_test_root=$(CBSC)" $(SET))" && echo "dvc exp run -n real $$flags" && \
	  eval "PATH=\"$(CURDIR)/$(VENV)/bin:\$$PATH\" $(VENV)/bin/dvc exp run -n real $$flags"
	@$(PY) -m sketchseg.pipeline

bench: setup
	$(PY) bench/synth.py
	$(PY) bench/captions.py
	$(PY) bench/infer.py
	$(PY) bench/train.py
	$(PY) bench/serve.py

# The paper's scale on a GPU (bench/gpu.py; DEVELOPERS.md): training step, projected paper training time, segmentation
# latency and throughput, largest batches, the DDP and bf16 tests on CUDA. JSON on stdout and in bench/results/gpu.json.
# Without CUDA it stops in one line; GPU_ARGS=--tiny runs the same code paths on CPU in well under a minute.
GPU_ARGS ?=
bench-gpu: setup
	$(PY) bench/gpu.py --out bench/results/gpu.json $(GPU_ARGS)

lint: setup
	$(PY) -m ruff check sketchseg tests bench flows

# Re-resolve the lock from requirements.in (needs the package registries).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -r requirements.in
	.lockvenv/bin/pip freeze --exclude-editable > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache

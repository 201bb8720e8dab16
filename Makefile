# Two commands: `make book` (build the whole book on the embedded default) and `make test`.
# `make paper` runs the paper profile (your stems, musicgen-melody, 8 GPUs: see params/paper.yaml).
# `make rehearsal` runs the paper profile's code offline on CPU against random-init weights laid out
# as the real caches (params/rehearsal.yaml), the way CI proves the paper path works.

PARAMS ?= params/smoke.yaml
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-nodeps.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha1sum | cut -c1-12)
# essentia and essentia-tensorflow provide the same module: one or the other is installed, never both
ESSENTIA_VERSION := $(shell sed -n 's/^essentia==//p' requirements.txt)
HAS_ESSENTIA_TF = $(PY) -m pip show essentia-tensorflow >/dev/null 2>&1
REHEARSAL_CACHE ?= runs/rehearsal-cache
REHEARSAL_LAYERS ?= 2
RUN_DIR ?=

.PHONY: install book run html test paper rehearsal null-control essentia-tensorflow bench strip clean browser-deps

install: $(STAMP)
	@$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .

$(STAMP): $(REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	@if $(HAS_ESSENTIA_TF); then grep -v '^essentia==' requirements.txt > $(VENV)/requirements-essentia-tf.txt; \
	  $(PY) -m pip install -r $(VENV)/requirements-essentia-tf.txt; \
	else $(PY) -m pip install -r requirements.txt; fi
	$(PY) -m pip install --no-deps -r requirements-nodeps.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

book: install
	$(PY) -m silicon_sing.pipeline book --params $(PARAMS)

run: install
	$(PY) -m silicon_sing.pipeline run --params $(PARAMS)

html: install
	$(PY) -m silicon_sing.pipeline build --params $(PARAMS)

test: install browser-deps
	$(PY) -m pytest

# Debian's Chromium for the browser test (the machine's own package manager; no browser download)
browser-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }

# the paper profile captions with Essentia's TensorFlow models (caption.essentia_model_dir)
essentia-tensorflow: install
	@$(HAS_ESSENTIA_TF) || { $(PY) -m pip uninstall -y essentia && \
	  $(PY) -m pip install essentia-tensorflow==$(ESSENTIA_VERSION); }

paper: essentia-tensorflow
	$(MAKE) book PARAMS=params/paper.yaml

# random-init weights in throwaway HF / torch hub caches, selected by environment variables only
rehearsal: install
	$(PY) scripts/make_rehearsal_caches.py --root $(REHEARSAL_CACHE) --lm-layers $(REHEARSAL_LAYERS)
	eval "$$($(PY) scripts/make_rehearsal_caches.py --root $(REHEARSAL_CACHE) --lm-layers $(REHEARSAL_LAYERS) --print-env)" && \
	  $(PY) -m silicon_sing.pipeline run --params params/rehearsal.yaml \
	  $(if $(RUN_DIR),--overrides '{"run_dir": "$(RUN_DIR)"}')

# the A/A control on a run (its generations are reused): how often an interval excludes zero when nothing changed
null-control: install
	$(PY) -m silicon_sing.metrics.null_control --params $(PARAMS) \
	  $(if $(RUN_DIR),--overrides '{"run_dir": "$(RUN_DIR)"}')

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

strip:
	$(PY) -m silicon_sing.nbtools strip notebooks/*.ipynb

clean:
	rm -rf _build book/executed

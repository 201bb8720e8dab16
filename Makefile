# Two commands: `make book` (build the whole book on the embedded default) and `make test`.
# `make paper` runs the paper profile (your stems, musicgen-melody, 8 GPUs: see params/paper.yaml).

PARAMS ?= params/smoke.yaml
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-nodeps.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha1sum | cut -c1-12)

.PHONY: install book run html test paper bench strip clean browser-deps

install: $(STAMP)
	@$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .

$(STAMP): $(REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install -r requirements.txt
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

paper:
	$(MAKE) book PARAMS=params/paper.yaml

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

strip:
	$(PY) -m silicon_sing.nbtools strip notebooks/*.ipynb

clean:
	rm -rf _build book/executed

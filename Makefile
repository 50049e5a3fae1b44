# hybrid-agent developer targets. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Slow-to-build things are cached outside the repo, once per machine.
CACHE ?= /var/cache/hybrid-agent-test
WHEELS := $(CACHE)/wheels
MODELS := $(CACHE)/models
LLAMA_VERSION := 0.3.36
PYTEST_ARGS ?=

.PHONY: test lint venv models llama-wheel etc-configs e2e deb clean

test: venv models
	HYBRID_AGENT_TEST_MODELS=$(MODELS) HYBRID_AGENT_TEST_CACHE=$(CACHE) \
	  $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check appliance installer tests bench
	$(VENV)/bin/mypy
	shellcheck install.sh .ci/run packaging/debian/*.postinst packaging/debian/*.postrm

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml | llama-wheel
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --find-links $(WHEELS) -e '.[voice,llm,dev]'
	touch $@

# llama-cpp-python compiles llama.cpp (about 7 minutes on 2 cores): build the wheel once.
llama-wheel: $(WHEELS)/.llama-$(LLAMA_VERSION)

$(WHEELS)/.llama-$(LLAMA_VERSION):
	mkdir -p $(WHEELS)
	@echo "building llama-cpp-python $(LLAMA_VERSION) from source (about 7 minutes, once per machine)..."
	$(PYTHON) -m pip wheel --no-deps --wheel-dir $(WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	touch $@

models: venv
	$(VENV)/bin/hybrid-agent models fetch --dir $(MODELS) --role stt --role tts --role llm

# Only the real-systemd installer tests (root; boots Debian 12 containers).
e2e: venv models
	HYBRID_AGENT_TEST_MODELS=$(MODELS) HYBRID_AGENT_TEST_CACHE=$(CACHE) \
	  $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# Debian packages into dist/, built in a clean Debian 12 root of ARCH (arm64: emulated,
# hybrid-agent only); cached by source under $(CACHE)/deb (docs/operations.md).
ARCH ?= $(shell dpkg --print-architecture)
deb: $(if $(filter amd64,$(ARCH)),llama-wheel)
	HYBRID_AGENT_TEST_CACHE=$(CACHE) $(PYTHON) packaging/build_deb.py --arch $(ARCH)

# The default config of each tier that install.sh writes (a test keeps these in step).
etc-configs: venv
	for t in edge mid core; do \
	  $(VENV)/bin/hybrid-agent config defaults --tier $$t > etc/hybrid-agent/config.$$t.yaml; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

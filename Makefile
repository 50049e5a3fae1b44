# hybrid-agent developer targets. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Slow-to-build things are cached outside the repo, once per machine.
CACHE ?= /var/cache/hybrid-agent-test
WHEELS := $(CACHE)/wheels
MODELS := $(CACHE)/models
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_RPC=ON -DGGML_RPC_RDMA=OFF
LLAMA_MARK := $(WHEELS)/.llama-$(LLAMA_VERSION)-rpc
RPC_CHECK := import sys; from appliance.llm.rpc.ggml import supports_rpc; sys.exit(not supports_rpc())
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

$(VENV)/.installed: pyproject.toml $(LLAMA_MARK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --find-links $(WHEELS) -e '.[voice,llm,dev]'
	@# A venv made before the wheel had the RPC backend keeps its old build (same version).
	$(PY) -c "$(RPC_CHECK)" || $(PY) -m pip install --quiet --force-reinstall --no-deps \
	  --no-index --find-links $(WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	touch $@

# llama-cpp-python compiles llama.cpp (about 7 minutes on 2 cores): build the wheel once,
# with llama.cpp's RPC backend for models split over several boxes (docs/rpc.md) and
# without its RDMA transport (it would bypass the encrypted link). --no-cache-dir: pip's
# wheel cache does not know CMAKE_ARGS and could hand back a build without RPC.
llama-wheel: $(LLAMA_MARK)

$(LLAMA_MARK):
	mkdir -p $(WHEELS)
	@echo "building llama-cpp-python $(LLAMA_VERSION) with RPC from source (about 7 minutes, once per machine)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PYTHON) -m pip wheel --no-deps --no-cache-dir \
	  --wheel-dir $(WHEELS) llama-cpp-python==$(LLAMA_VERSION)
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

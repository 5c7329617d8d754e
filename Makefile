# The two commands of the README: `make run` and `make test`. Both set everything up themselves.
VENV    := .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA    ?= data

.PHONY: setup system-deps localstack run cluster test lint unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages: Chromium for the browser tests; Pango and a CJK font for the PDF reports
# (WeasyPrint); poppler-utils (pdftotext) for the report tests; PostgreSQL and nginx for the
# local cluster (server/cli/cluster/: throwaway instances of their own, never the services);
# coturn for the TURN test (tests/turn_server.py). Installed only when missing.
DEBIAN_DEPS := chromium libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk poppler-utils \
  postgresql nginx coturn
# Services the packages start on install (Debian's own 15/main cluster on :5432, nginx's default
# site on :80, coturn on :3478): stopped and disabled again when this recipe installed them. A
# container whose policy-rc.d forbids starts (exit 101) starts none.
DEBIAN_SERVICES := postgresql nginx coturn

system-deps:
	@missing="$$(for p in $(DEBIAN_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done)"; \
	[ -z "$$missing" ] || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing && \
	  for s in $(DEBIAN_SERVICES); do case " $$missing " in *" $$s "*) \
	    if [ -d /run/systemd/system ]; then $(SUDO) systemctl disable --now -q $$s; \
	    else $(SUDO) service $$s stop >/dev/null 2>&1 || true; fi ;; esac; done ; }

# The tests' S3 server: LocalStack (S3 only, no Docker) in a venv of its own, so its pins never
# touch ours. tests/s3server.py starts it on loopback, offline.
LOCALSTACK_VENV  := .localstack-venv
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed-4.9.2

$(LOCALSTACK_STAMP):
	$(PYTHON) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/pip install -q 'localstack-core[runtime]==4.9.2' 'cbor2<5.7' \
	  'cryptography<45' 'pyopenssl<25' service_identity 'joserfc<1.3'
	touch $@

localstack: $(LOCALSTACK_STAMP)

# make run [HOST=0.0.0.0] [PORT=8081] [PUBLIC_URL=https://takan.example.org]: where to listen, and
# the base of invite links and QR codes (default on 0.0.0.0: this machine's LAN address). Taken
# from make's command line only: some shells export HOST (the machine's name).
arg = $(if $(filter command line,$(origin $(1))),$($(1)),$(2))
RUN_HOST       = $(or $(call arg,HOST,),127.0.0.1)
RUN_PORT       = $(or $(call arg,PORT,),8080)
RUN_PUBLIC_URL = $(call arg,PUBLIC_URL,)

run: setup
	$(BIN)/takan serve --data '$(DATA)' --host '$(RUN_HOST)' --port '$(RUN_PORT)' \
	  --public-url '$(RUN_PUBLIC_URL)' --demo-users

# make cluster [PORT=8080] [NODES=3]: PostgreSQL, SeaweedFS, nginx and NODES takan nodes on this
# machine behind http://127.0.0.1:PORT (server/cli/cluster/local.py); Ctrl-C stops them all.
cluster: setup system-deps
	$(BIN)/takan cluster --port '$(or $(call arg,PORT,),8080)' --nodes '$(or $(call arg,NODES,),3)'

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict

test: setup system-deps localstack lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

# The benchmarks behind the performance targets (README, Tests and benchmarks); the others run
# one by one.
BENCHES := bench_live bench_join bench_720p bench_recorder bench_verify

bench: setup system-deps
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python tests/bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) $(LOCALSTACK_VENV) .mypy_cache .ruff_cache .pytest_cache

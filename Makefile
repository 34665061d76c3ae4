# The two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PUPILS ?= 130000
SCHOOLS ?= 1000
DEFECTS ?= 0.001
DEMO   := outputs/demo

.PHONY: venv bytecode demo test check lint lab explorer bench bench-all clean system-packages

# A classic (compat) editable install: the finder-based default resolves `ent_audit` as an
# empty namespace package when a script runs from a sub-folder (benchmarks/).
PIP := $(BIN)/python -m pip install --quiet --config-settings editable_mode=compat

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip > $(VENV)/pip.log 2>&1
	$(PIP) -e '.[test]' >> $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	$(BIN)/python -c "from ent_audit.reports.runner import ensure_kernel; ensure_kernel()"
	touch $(STAMP)

venv: $(STAMP)

# The package's bytecode, compiled as a wheel's installation compiles it: with
# PYTHONDONTWRITEBYTECODE set (as on this project's machines) an editable checkout would
# otherwise recompile every module in every process it starts (each CLI call, each kernel).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 ent_audit

# The demo injects every named defect at a small rate, so the quality report has something to
# show; its blocking findings make `report` exit 1, which is the demo working, not failing.
demo: $(STAMP) bytecode
	$(BIN)/ent-audit demo --out $(DEMO) --store outputs/demo-store --schools $(SCHOOLS) \
		--pupils $(PUPILS) --all-defects $(DEFECTS)
	$(BIN)/ent-audit report all -p params/demo.yaml; test $$? -le 1

# System packages the suite needs: a real OpenSSH server for the SFTP tests, Debian's
# Chromium for the rendered-report tests. Installed when missing (CI machines start bare).
SYSTEM_PACKAGES := openssh-server chromium

# `make test`: lint, then the whole suite (real sshd, real kernels, real Chromium) on every
# core (pytest-xdist; a test file stays on one worker, so its module fixtures are built once);
# the 15 slowest tests listed at the end, to keep the suite well under CI's 15 minutes.
test: $(STAMP) bytecode system-packages lint
	$(BIN)/python -m pytest -q -n auto --dist loadfile --durations=15

# `make check`: lint and the fast tests, in under a minute, while you work.
check: $(STAMP) bytecode lint
	$(BIN)/python -m pytest -q -n auto --dist loadfile -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

system-packages:
	@missing=""; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing > /tmp/ent-audit-apt.log 2>&1 \
			|| { cat /tmp/ent-audit-apt.log; exit 1; }; \
	fi

# The interactive side, on 127.0.0.1 only. Both build the demo store first when it is absent
# (`make lab STORE=DIR` opens another one). This project's machines run as root, hence
# --allow-root; JupyterLab prints its URL with the token, Voilà needs none on 127.0.0.1.
STORE  ?= outputs/demo-store
LAB_PORT ?= 8888
EXPLORER_PORT ?= 8866

lab: $(STAMP)
	@test -f $(STORE)/CURRENT || $(BIN)/ent-audit demo --out $(DEMO) --store $(STORE) \
		--schools $(SCHOOLS) --pupils $(PUPILS) --all-defects $(DEFECTS)
	ENT_AUDIT_STORE=$(abspath $(STORE)) $(BIN)/jupyter lab --notebook-dir=notebooks \
		--ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --no-browser --allow-root

explorer: $(STAMP)
	@test -f $(STORE)/CURRENT || $(BIN)/ent-audit demo --out $(DEMO) --store $(STORE) \
		--schools $(SCHOOLS) --pupils $(PUPILS) --all-defects $(DEFECTS)
	@echo "Explorateur : http://127.0.0.1:$(EXPLORER_PORT)/"
	ENT_AUDIT_STORE=$(abspath $(STORE)) $(BIN)/voila notebooks/roster_explorer.ipynb \
		--Voila.ip=127.0.0.1 --port=$(EXPLORER_PORT) --no-browser

bench: $(STAMP) bytecode
	$(BIN)/python benchmarks/bench_reader.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_quality.py
	$(BIN)/python benchmarks/bench_delta.py
	$(BIN)/python benchmarks/bench_activity.py
	$(BIN)/python benchmarks/bench_national.py

# `make bench-all`: the whole chain on an académie (2,400 schools, 260,000 pupils, 20,000 staff,
# a school year of 10 million events), each stage timed as users run it; the table goes to
# benchmarks/results.md (README, « Performance »). Generation is cached under outputs/bench/.
ACADEMIE_SCHOOLS ?= 2400
ACADEMIE_PUPILS ?= 260000
ACADEMIE_STAFF ?= 20000
EVENTS ?= 10000000

bench-all: $(STAMP) bytecode system-packages
	$(BIN)/python benchmarks/run_all.py --schools $(ACADEMIE_SCHOOLS) --pupils $(ACADEMIE_PUPILS) \
		--staff $(ACADEMIE_STAFF) --events $(EVENTS)

# `make screenshots`: each report's first screen (its latest run in outputs/, so after
# `make demo`) to docs/NAME.png with Debian's headless Chromium; the README shows them.
.PHONY: screenshots
screenshots: $(STAMP) system-packages
	$(BIN)/python -m ent_audit.reports.screenshots --outputs outputs --dest docs

clean:
	rm -rf $(VENV) $(DEMO) outputs/demo-store outputs/bench

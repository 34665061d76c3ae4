# The two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PUPILS ?= 130000
SCHOOLS ?= 1000
DEFECTS ?= 0.001
DEMO   := outputs/demo

.PHONY: venv demo test lab bench clean system-packages

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

# The demo injects every named defect at a small rate, so the quality report has something to
# show; its blocking findings make `report` exit 1, which is the demo working, not failing.
demo: $(STAMP)
	$(BIN)/ent-audit demo --out $(DEMO) --store outputs/demo-store --schools $(SCHOOLS) \
		--pupils $(PUPILS) --all-defects $(DEFECTS)
	$(BIN)/ent-audit report all -p params/demo.yaml; test $$? -le 1

# System packages the suite needs: a real OpenSSH server for the SFTP tests, Debian's
# Chromium for the rendered-report tests. Installed when missing (CI machines start bare).
SYSTEM_PACKAGES := openssh-server chromium

test: $(STAMP) system-packages
	$(BIN)/python -m pytest -q

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

lab: $(STAMP)
	$(PIP) -e '.[lab]' >> $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_reader.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_quality.py
	$(BIN)/python benchmarks/bench_activity.py

clean:
	rm -rf $(VENV) $(DEMO) outputs/demo-store outputs/bench

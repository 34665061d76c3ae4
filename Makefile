# The two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PUPILS ?= 130000
SCHOOLS ?= 1000
DEMO   := outputs/demo

.PHONY: venv demo test lab bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ent-audit demo --out $(DEMO) --schools $(SCHOOLS) --pupils $(PUPILS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet --config-settings editable_mode=compat -e '.[lab]'
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_reader.py

clean:
	rm -rf $(VENV) $(DEMO)

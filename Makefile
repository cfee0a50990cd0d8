# The README's two commands: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8501

.PHONY: install demo test test-fast hub doctor benchmark clean lock

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=68" wheel

# Installs from the constraints file, so CI and a newcomer get the same versions.
$(STAMP): $(BIN)/python pyproject.toml setup.py constraints.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

# A vertical whose demo fails is reported in the summary; the hub still starts to show the others.
demo: $(STAMP)
	-$(BIN)/vai doctor
	-$(BIN)/vai demo
	$(BIN)/vai hub --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not e2e and not slow and not data"

hub: $(STAMP)
	$(BIN)/vai hub --port $(PORT)

doctor: $(STAMP)
	$(BIN)/vai doctor

benchmark: $(STAMP)
	$(BIN)/python -m benchmarks

# Re-pin after changing dependencies: writes constraints.txt from the current venv.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# `make demo` and `make test` work on a fresh machine with only Python 3.11 and pip:
# each creates .venv when it is missing and installs the project with its dev extras first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test check bench serve lint clean

$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing leadloop and its dev extras into $(VENV) (log: $(VENV)/install.log) ..."
	@$(BIN)/python -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 \
		&& $(BIN)/python -m pip install -e '.[dev]' >> $(VENV)/install.log 2>&1 \
		|| { tail -n 40 $(VENV)/install.log; echo "installation failed: see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/leadloop demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The quick lane for day-to-day work: the linter, then every test not marked slow (tests/conftest.py
# marks the ones that start a sandbox, a Prefect engine or PostgreSQL). `make test` runs everything.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/hadolint deployments/Dockerfile
	$(BIN)/python -m pytest -q -m "not slow and not postgres"

bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(ARGS)

# A local Prefect server, the sandbox CRMs saved as the block `sandbox`, the four deployments and a
# worker (deployments/serve.py); one Ctrl-C stops them all. LEADLOOP_SERVE_PORT=4300 make serve for
# another port than 4200; state in .leadloop/serve.
serve: $(STAMP)
	$(BIN)/python -m leadloop.deployments.serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/hadolint deployments/Dockerfile

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

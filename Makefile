# RegimeDesk: `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@echo "==> creating the virtual environment $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip"
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> installing RegimeDesk and its dependencies (pandas, statsmodels, arch, hmmlearn,"
	@echo "    scikit-learn, xgboost, skfolio, langgraph, openai, alpaca-py, polygon, telegram, reportlab and"
	@echo "    the test tools): about 100 packages, 1 GB installed; a few minutes the first time"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "==> installed: $(BIN)/regimedesk"

install: $(STAMP)

run: $(STAMP)
	@echo "==> regimedesk run SP500 (embedded data, no keys). The first run trains and stores the SP500"
	@echo "    model and fits every regime model: about 15 s; later runs reuse them (a few seconds)."
	$(BIN)/regimedesk run SP500

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# Two commands: `make demo` (set up, then compile and verify the bundled example)
# and `make test` (set up, then run the whole test suite). `make setup` is idempotent: it is the pip
# install a user runs (README, "Install"), spc with every extra, at the versions in constraints.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spc-installed
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: setup demo test bench table fuzz clean

setup: $(STAMP)

$(STAMP): constraints.txt pyproject.toml spc/extras.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if $(BIN)/pip show spc >/dev/null 2>&1; then $(BIN)/pip uninstall $(PIP_QUIET) -y spc; fi  # spc-snn's name before
	$(BIN)/pip install $(PIP_QUIET) -c constraints.txt -e '.[test]'
	$(BIN)/python -m spc.extras install all $(PIP_QUIET) -c constraints.txt
	touch $(STAMP)

demo: setup
	$(BIN)/python examples/digits.py

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/b1_training_speed.py
	$(BIN)/python benchmarks/b2_inference.py
	$(BIN)/python benchmarks/b3_compile_time.py
	$(BIN)/python benchmarks/b4_memory.py
	$(BIN)/python benchmarks/sim_speed.py
	$(BIN)/python benchmarks/results_md.py

table: setup
	$(BIN)/python tools/target_table.py --readme README.md

FUZZ_SECONDS ?= 60
fuzz: setup
	$(BIN)/pip install $(PIP_QUIET) atheris
	for target in npy checkpoint graph-json weights-npz nir onnx; do \
		$(BIN)/python fuzz/run.py $$target -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 || exit 1; \
	done

clean:
	rm -rf $(VENV) examples/.cache out

# Two commands: `make demo` (set up, then compile and verify the bundled example)
# and `make test` (set up, then run the whole test suite). `make setup` is idempotent.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spc-installed

.PHONY: setup demo test bench table fuzz clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python lava-nc==0.10.0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps spikingjelly==2.0.0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps nirtorch==2.6 snntorch==1.0.0 norse==1.1.0
	# SynSense: Rockpool (Xylo's mapper and XyloSim's Python side), xylosim (XyloSim itself, built from
	# its sdist with the C++ compiler in about a minute) and Sinabs (its NIR reader)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps rockpool==3.1.0 xylosim==0.1.3 sinabs==3.1.3
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
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
	$(BIN)/pip install --quiet --disable-pip-version-check atheris
	for target in npy checkpoint graph-json weights-npz nir onnx; do \
		$(BIN)/python fuzz/run.py $$target -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 || exit 1; \
	done

clean:
	rm -rf $(VENV) examples/.cache out

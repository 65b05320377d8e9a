.PHONY: quickstart test bench

quickstart:  ## install (once) and run examples/quickstart.py
	@bash scripts/quickstart.sh

test:  ## install (once), then ruff, mypy --strict and the whole pytest suite
	@bash scripts/test.sh

bench:  ## every benchmark scenario (under 6 min), tables into docs/benchmarks.md; BENCH_ARGS=--quick: smoke sizes
	@bash scripts/bootstrap.sh && .venv/bin/python -m benchmarks $(BENCH_ARGS)

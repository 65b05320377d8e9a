.PHONY: quickstart test bench

quickstart:  ## install (once) and run examples/quickstart.py
	@bash scripts/quickstart.sh

test:  ## install (once), then ruff, mypy --strict and the whole pytest suite
	@bash scripts/test.sh

bench:  ## run every benchmark in benchmarks/ and print the ratios
	@bash scripts/bootstrap.sh && .venv/bin/python -m benchmarks

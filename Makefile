.PHONY: test check demo bootstrap lint bench

# The whole test suite on a fresh Debian machine: installs what is missing, then runs pytest.
test: bootstrap
	.venv/bin/python -m pytest

# The fast unit tier (seconds): no cluster, proxy, browser or whole-tool run (see the
# `integration` marker in tests/conftest.py).
check:
	.venv/bin/python -m pytest -q -m "not integration"

bootstrap:
	bash scripts/bootstrap.sh

lint: bootstrap
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

demo: bootstrap
	.venv/bin/python -m tools.demo

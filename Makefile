.PHONY: test demo bootstrap lint bench

# The whole test suite on a fresh Debian machine: installs what is missing, then runs pytest.
test: bootstrap
	.venv/bin/python -m pytest

bootstrap:
	bash scripts/bootstrap.sh

lint: bootstrap
	.venv/bin/ruff check . && .venv/bin/ruff format --check driver proxy && .venv/bin/mypy

demo: bootstrap
	.venv/bin/python -m tools.demo

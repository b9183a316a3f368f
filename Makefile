.PHONY: setup test test-fast demo lint
setup:
	bash scripts/setup.sh
test:
	bash scripts/test.sh
test-fast:
	.venv/bin/python -m pytest -q -m "not slow"
demo:
	bash scripts/demo.sh
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy --strict shared choreography orchestration harness monitor tests scripts

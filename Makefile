# Shortcuts for the two commands of the README (scripts/demo, scripts/test).
.PHONY: demo test test-fast lint clean

demo:
	./scripts/demo

test:
	./scripts/test

test-fast:
	./scripts/test -m "not sandbox"

lint:
	./scripts/test --co -q >/dev/null && .venv/bin/ruff check . && .venv/bin/mypy mpac_drill actions probes reports

clean:
	-.venv/bin/mpac-drill sandbox down
	rm -rf .venv .sandbox .sandbox-* runs .locks

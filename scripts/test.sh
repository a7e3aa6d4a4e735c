#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run havm's whole test suite: lint, unit tests,
# and the lab/QEMU acceptance tests (these need root; they skip with a reason
# otherwise). Exits non-zero on any failure, and also when no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy src
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "test: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit $rc

#!/usr/bin/env bash
# The main job: set up (scripts/setup.sh), bring up a local 3-node lab cluster of real
# havmd daemons in network namespaces, and show it working: status, a node killed and
# declared dead, quorum kept, the node back, a configuration change replicated.
# Leaves nothing behind (the lab is torn down at the end, also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m havm.lab.demo "$@"

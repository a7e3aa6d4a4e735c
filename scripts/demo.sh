#!/usr/bin/env bash
# The main job: set up (scripts/setup.sh), then bring up a local 3-node lab cluster
# (real havmd daemons in network namespaces, two heartbeat links) running two real
# QEMU guests, live-migrate one, power-cut the node of the other and show it fenced
# and recovered, with the times measured in this run. Leaves nothing behind (the lab
# is torn down at the end, also on failure or Ctrl-C). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m havm.demo "$@"

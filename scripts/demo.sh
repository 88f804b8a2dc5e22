#!/usr/bin/env bash
# Starts a demo group of three jobs in USVC_HOME=$1 and shows their status.
set -euo pipefail
export USVC_HOME="$1"
usvc="$(pwd)/.build/debug/usvc"
worker="$(pwd)/conf/examples/demo-worker.sh"
"$usvc" rm all >/dev/null 2>&1 || true
"$usvc" start -n 3 demo "$worker"
"$usvc" status
cat <<MSG

The demo runs in USVC_HOME=$USVC_HOME. Try:
  export USVC_HOME=$USVC_HOME PATH=$(pwd)/.build/debug:\$PATH
  usvc attach demo-1      # live output; Ctrl-C is not sent to the job; detach with C-b d
  usvc logs demo -n 5     # the last lines of each job's log
  usvc restart demo       # every pid changes
  usvc kill -s KILL demo-2; usvc status   # it comes back with a new pid
  usvc shutdown           # stops everything (usvc resurrect brings it back)
MSG

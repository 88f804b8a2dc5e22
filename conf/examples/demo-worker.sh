#!/bin/sh
# A demo job: prints a line a second, in colour when it has a terminal.
n=0
if [ -t 1 ]; then green=$(printf '\033[32m'); plain=$(printf '\033[0m'); else green=; plain=; fi
echo "${green}$USVC_JOB${plain} starting (pid $$)"
while :; do
  n=$((n + 1))
  echo "$USVC_JOB: tick $n"
  sleep 1
done

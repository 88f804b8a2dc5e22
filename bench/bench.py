#!/usr/bin/env python3
"""Benchmark harness for usvc against runit, s6, supervisord and a bare tmux pane.

Python 3 standard library only. Everything runs on this machine, in one run:

  1. respawn latency   SIGKILL a long-running job, time until the replacement
                       has really exec'd the program (/proc/PID/cmdline).
  2. memory per job    private memory (USS) of the per-job supervisor process
                       and of shared daemons, at --jobs jobs; usvc's runner
                       also with an http:// readiness and a tcp: health check.
  3. CLI latency       `usvc status` at each --scale size, `usvc jobs`,
                       `usvc pidof all`, against `supervisorctl status`.
  4. start throughput  `usvc start -n N`, N single starts, `usvc stop all`.
  5. crash-loop cost   supervisor CPU seconds while a job that exits at once
                       crash-loops.

Usage:
  python3 bench/bench.py --out BENCHMARKS.md --json bench/results.json
  python3 bench/bench.py --smoke            # seconds; non-zero if broken
  python3 bench/bench.py --smoke --skip-usvc
  python3 bench/bench.py --report-only bench/results.json --out BENCHMARKS.md

Peers are installed from Debian's packages when missing (root + apt-get) and
are always started by hand in a temporary directory, never through init.
Every process a measurement starts is tracked and must be gone at its end;
leftovers are killed and reported as errors (exit status 1).

The code is in usvc_bench/, one module per phase (respawn, peers, scale,
probes, start, crashloop) on top of common (clock, /proc, statistics), supervisors
(usvc and the peers behind one interface) and build (which usvc is measured);
harness.py holds the list of phases (a new phase is one line there), targets.py
the verdicts, report.py the Markdown, cli.py the flags.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from usvc_bench.cli import main  # noqa: E402 (after the path it is found on)

if __name__ == "__main__":
    sys.exit(main(description=__doc__.split("\n\n")[0]))

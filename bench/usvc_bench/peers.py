"""Phase 2, the peers at --jobs jobs: memory of each (all side by side, USS
does not depend on neighbours) and the latency of their status clients."""

import time

from .common import JOB_ARGV, BenchError
from .measure import measure_cli, measure_memory
from .supervisors import S6, BashLoop, Runit, Supervisord, TmuxLoop


def phase_peers_memory_cli(r):
    """Memory at --jobs jobs for every peer, all running side by side (USS
    does not depend on neighbours); client latency where a peer has one."""
    n = r.cfg["jobs"]
    r.log(f"memory: peers x {n} jobs")
    sups = r.start_side_by_side("memory", [Runit, S6, BashLoop, TmuxLoop, Supervisord],
                                n, lambda s: JOB_ARGV)
    try:
        time.sleep(0.5)  # let start-up allocations settle
        for sup in sups:
            try:
                r.results["memory"][sup.name] = measure_memory(sup)
            except (BenchError, OSError) as e:
                r.error(f"memory/{sup.name}", e)
                r.results["memory"][sup.name] = dict(status=f"error: {e}")
        for cls in [Supervisord, Runit]:
            sup = next((s for s in sups if type(s) is cls), None)
            key = {Supervisord: "supervisorctl", Runit: "sv"}[cls] + f" status @{n}"
            if sup is None:
                r.results["cli"][key] = dict(jobs=n, status=r.status_of(cls))
                continue
            r.log(f"cli: {key}")
            try:
                # All programs run, so a non-zero exit (supervisorctl: 3 when
                # one is not RUNNING) is a real error.
                r.results["cli"][key] = dict(jobs=n, **measure_cli(
                    sup.status_argv(), r.cfg["cli_runs"], expect_lines=n))
            except BenchError as e:
                r.error(f"cli/{key}", e)
                r.results["cli"][key] = dict(jobs=n, status=f"error: {e}")
    finally:
        r.finish(sups)

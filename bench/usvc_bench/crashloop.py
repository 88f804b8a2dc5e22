"""Phase 5, crash-loop cost: CPU of each supervisor's own processes while
its one job exits at once."""

import os
import time

from .common import CLK_TCK, BenchError, cpu_ns, cpu_seconds
from .supervisors import S6, Runit, Supervisord, TmuxLoop, Usvc


class CrashTmuxLoop(TmuxLoop):
    throttle_s = 1  # without it the loop spins a whole core; runit/s6 wait 1 s too


def crash_argv(sup):
    """Exits at once (status 1) after counting its start in a file; `$0`
    carries the path, so no quoting is involved."""
    sup.count_file = os.path.join(sup.dir, "starts")
    return ["sh", "-c", 'echo x >> "$0"; exec false', sup.count_file]


def measure_crashloop(sups, seconds):
    """CPU seconds (utime+stime) of each supervisor's own processes while its
    one job exits at once, for `seconds`. All supervisors run at the same time
    (CPU accounting is per process, so they do not disturb each other's
    figure) to keep the run short. The job appends a line to a file per run,
    so starts are counted the same way for everyone."""
    time.sleep(1.0)  # leave start-up CPU out of the window

    def snapshot(s):
        pids = s.per_job_pids() + s.shared_pids()
        return {p: (cpu_seconds(p), cpu_ns(p)) for p in pids}, count_lines(s.count_file)

    out, before = {}, {}
    for s in sups:
        try:
            before[s] = snapshot(s)
        except (BenchError, OSError) as e:
            out[s.name] = dict(status=f"error: {e}")
    time.sleep(seconds)
    for s in before:
        try:
            cpu1, starts1 = snapshot(s)
            cpu0, starts0 = before[s]
            if set(cpu1) != set(cpu0):
                raise BenchError(f"supervisor processes changed: {sorted(cpu0)} -> {sorted(cpu1)}")
            used = sum(cpu1[p][0] - cpu0[p][0] for p in cpu1)
            used_ns = sum(cpu1[p][1] - cpu0[p][1] for p in cpu1)
            out[s.name] = dict(status="ok", seconds=seconds, cpu_s=round(used, 3),
                               cpu_ms_schedstat=round(used_ns / 1e6, 3),
                               cpu_pct=round(100 * used_ns / 1e9 / seconds, 3),
                               starts=starts1 - starts0)
        except (BenchError, OSError) as e:
            out[s.name] = dict(status=f"error: {e}")
    return out


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def phase_crashloop(r):
    secs = r.cfg["crash_s"]
    r.log(f"crash loop: {secs:.0f} s, all supervisors at once")
    r.method["crashloop"] = dict(tmux_loop_sleep_s=CrashTmuxLoop.throttle_s,
                                 stat_tick_ms=1000 / CLK_TCK)
    sups = r.start_side_by_side("crashloop", [Runit, S6, Supervisord, CrashTmuxLoop, Usvc],
                                1, crash_argv, wait=False)
    try:
        res = measure_crashloop(sups, secs)
        r.record("crashloop", res)
    finally:
        r.finish(sups)

"""Measurements shared by several phases: memory of a running supervisor,
wall time of a client command."""

import shlex

from .common import BenchError, median, summary_ms, timed, uss_kib

# Discarded runs before a client command is timed (page cache, first connect).
CLI_WARMUP_RUNS = 1


def measure_memory(sup):
    """USS of the per-job supervisor processes and of shared daemons."""
    per = [uss_kib(p) for p in sup.per_job_pids()]
    shared = sum(uss_kib(p) for p in sup.shared_pids())
    n = sup.n
    res = dict(status="ok", jobs=n, per_job_process=sup.per_job_label,
               shared_process=sup.shared_label, shared_kib=shared,
               per_job_total_kib=round((sum(per) + shared) / n, 1))
    if per:
        res.update(per_process_median_kib=median(per), per_process_max_kib=max(per),
                   per_process_count=len(per))
    return res


def measure_cli(argv, runs, env=None, expect_lines=None, check=True):
    """Wall times of a client command over `runs` runs, after CLI_WARMUP_RUNS
    discarded ones (the first's output is checked)."""
    cp = None
    for _ in range(CLI_WARMUP_RUNS):
        _, cp = timed(argv, env=env, check=check)
    if cp is None:
        _, cp = timed(argv, env=env, check=check)
    lines = len(cp.stdout.decode(errors="replace").splitlines())
    if expect_lines is not None and lines != expect_lines:
        raise BenchError(f"`{shlex.join(argv[-3:])}` printed {lines} lines, "
                         f"expected {expect_lines}")
    times = [timed(argv, env=env, check=check)[0] for _ in range(runs)]
    return dict(status="ok", **summary_ms(times))

"""Phase 3, usvc at scale: one USVC_HOME grown to each size of --scale;
`usvc status` at each, `usvc jobs`, `usvc pidof all` and memory at --jobs."""

import time

from .common import JOB_ARGV, BenchError, now, uss_kib
from .measure import measure_cli, measure_memory
from .supervisors import Runit, Usvc


def phase_usvc_scale(r):
    """One usvc home grown to each size in cfg['scale']: status at each size;
    jobs, pidof and memory at --jobs jobs."""
    n_mem = r.cfg["jobs"]
    sizes = sorted(set(r.cfg["scale"]) | {n_mem})
    keys = [f"usvc status @{k}" for k in r.cfg["scale"]] + \
           [f"usvc jobs @{n_mem}", f"usvc pidof all @{n_mem}"]
    u = r.open(Usvc)
    if u is None:
        for k in keys:
            r.results["cli"][k] = dict(status=r.status_of(Usvc))
        r.results["memory"]["usvc"] = dict(status=r.status_of(Usvc))
        return
    runs = r.cfg["cli_runs"]
    try:
        for size in sizes:
            t0 = now()
            u.start(size, JOB_ARGV)
            r.log(f"usvc: {size} jobs running ({now() - t0:.1f} s to grow)")
            if size in r.cfg["scale"]:
                r.results["cli"][f"usvc status @{size}"] = dict(
                    jobs=size, **measure_cli(u.cli_argv("status"), runs, u.env,
                                             expect_lines=size + 1))
            if size == n_mem:
                r.results["cli"][f"usvc jobs @{size}"] = dict(
                    jobs=size, **measure_cli(u.cli_argv("jobs"), runs, u.env, expect_lines=size))
                r.results["cli"][f"usvc pidof all @{size}"] = dict(
                    jobs=size, **measure_cli(u.cli_argv("pidof", "all"), runs, u.env,
                                             expect_lines=size))
                time.sleep(0.5)  # let start-up allocations settle
                r.results["memory"]["usvc"] = measure_memory(u)
            if size == sizes[-1]:
                r.results["memory"]["usvc"]["tmux_server_kib_at_max"] = dict(
                    jobs=size, kib=sum(uss_kib(p) for p in u.shared_pids()))
    except (BenchError, OSError) as e:
        r.error("usvc scale", e)
        for k in keys:
            r.results["cli"].setdefault(k, dict(status=f"error: {e}"))
        r.results["memory"].setdefault("usvc", dict(status=f"error: {e}"))
    finally:
        r.log("usvc: shutdown")
        r.finish([u])


def phase_sv_scale(r):
    """`sv status` at each size of cfg['scale'] the peers phase did not
    measure (it does --jobs): one runit with the largest count of services,
    `sv status` of the first k service directories for each size k (runsv
    answers for its own service; the others do not take part)."""
    sizes = [k for k in sorted(set(r.cfg["scale"])) if f"sv status @{k}" not in r.results["cli"]]
    if not sizes:
        return
    sup = r.open(Runit)
    if sup is None:
        for k in sizes:
            r.results["cli"][f"sv status @{k}"] = dict(jobs=k, status=r.status_of(Runit))
        return
    try:
        t0 = now()
        sup.start(sizes[-1], JOB_ARGV)
        r.log(f"runit: {sizes[-1]} services running ({now() - t0:.1f} s)")
        for k in sizes:
            key = f"sv status @{k}"
            r.log(f"cli: {key}")
            r.results["cli"][key] = dict(jobs=k, **measure_cli(sup.status_argv(k), r.cfg["cli_runs"],
                                                               expect_lines=k))
    except (BenchError, OSError) as e:
        r.error("sv scale", e)
        for k in sizes:
            r.results["cli"].setdefault(f"sv status @{k}", dict(jobs=k, status=f"error: {e}"))
    finally:
        r.finish([sup])

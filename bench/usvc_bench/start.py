"""Phase 4, start throughput: `usvc start -n N`, N single starts and
`usvc stop all` on a fresh USVC_HOME."""

from .common import JOB_ARGV, BenchError, summary_ms, timed
from .supervisors import Usvc


def measure_start_throughput(u, n):
    """Wall time of `usvc start -n N`, N single starts, and `usvc stop all`,
    on a fresh USVC_HOME."""
    out = {}
    # Cold: this includes starting usvc's tmux server, as a user's first
    # `start` does.
    t, cp = timed(u.cli_argv("start", "-n", str(n), "g", *JOB_ARGV), env=u.env, timeout=300)
    if cp.stdout.decode().count("started ") != n:
        raise BenchError(f"start -n {n} did not print {n} 'started' lines")
    out["start_n"] = dict(jobs=n, wall_s=round(t, 4), per_job_ms=round(t * 1000 / n, 3))
    t, _ = timed(u.cli_argv("stop", "all"), env=u.env, timeout=300)
    out["stop_all"] = dict(jobs=n, wall_s=round(t, 4), per_job_ms=round(t * 1000 / n, 3))
    u.cli("rm", "all", timeout=300)
    single = [timed(u.cli_argv("start", "h", *JOB_ARGV), env=u.env)[0] for _ in range(n)]
    out["start_single"] = dict(jobs=n, wall_s=round(sum(single), 4), **summary_ms(single))
    return out


def phase_start(r):
    u = r.open(Usvc)
    if u is None:
        r.results["start"] = dict(status=r.status_of(Usvc))
        return
    n = r.cfg["start_n"]
    r.log(f"start throughput: {n} jobs")
    try:
        r.results["start"] = dict(status="ok", **measure_start_throughput(u, n))
    except (BenchError, OSError) as e:
        r.error("start", e)
        r.results["start"] = dict(status=f"error: {e}")
    finally:
        r.finish([u])

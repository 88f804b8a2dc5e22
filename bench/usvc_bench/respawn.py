"""Phase 1, respawn latency: SIGKILL a long-running job, time until the
replacement has really exec'd the program (kernel tracepoints as root,
/proc/PID/cmdline polling otherwise)."""

import os
import subprocess
import signal
import time

from .common import JOB_ARGV, BenchError, descendants, now, runs_program, summary_ms
from .supervisors import S6, Runit, Supervisord, TmuxLoop, Usvc

# Extra rest on top of a supervisor's own "run too short" period before a
# kill, so no supervisor is ever measured inside its throttle window.
STABLE_MARGIN_S = 0.2
RESPAWN_TIMEOUT_S = 5.0
BUSY_POLL_S = 0.1     # fine /proc polling this long after a kill ...
FINE_NAP_S = 0.00005  # ... napping this long between scans (see wait_for_exec) ...
SLOW_POLL_S = 0.0005  # ... then this nap between scans

SUPERVISORS = [Runit, S6, Supervisord, TmuxLoop, Usvc]


def method():
    """The parameters the report's explanation of this phase quotes."""
    return dict(stable_margin_s=STABLE_MARGIN_S, busy_poll_s=BUSY_POLL_S,
                fine_nap_s=FINE_NAP_S, slow_poll_s=SLOW_POLL_S,
                quick_death_s={cls.name: cls.stable_s for cls in SUPERVISORS})


def wait_for_exec(root, old_pid, argv, t0, deadline, fine=True):
    """Poll /proc until a descendant of root other than old_pid runs argv;
    returns (pid, time). When its time is the measurement (`fine`), for the
    first BUSY_POLL_S after t0 it naps only FINE_NAP_S between scans
    (resolution ~0.1 ms, what a 2 ms target needs). Otherwise, and after that,
    it naps SLOW_POLL_S so that a supervisor with a 1 s floor does not cost a
    core for nothing."""
    while True:
        for pid in descendants(root):
            if pid != old_pid and runs_program(pid, argv):
                return pid, now()
        t = now()
        if t > deadline:
            raise BenchError(f"no replacement for pid {old_pid} under {root} "
                             f"within {RESPAWN_TIMEOUT_S:.0f} s")
        # Never a pure spin: on 2 cores a spinning poller keeps the CPU the
        # measured supervisor wakes up on until the scheduler's slice ends (about
        # 3 ms here, measured: a spin gave usvc 3.6 ms where a 100 us nap gave
        # 1.2 ms), which measures the scheduler, not the supervisor.
        time.sleep(FINE_NAP_S if fine and t - t0 <= BUSY_POLL_S else SLOW_POLL_S)


class ExecTracer:
    """Kernel timestamps of SIGKILLs and execs, from a private tracefs instance
    (root only): a respawn is then timed from the kill to the exec by the
    kernel's own clock, and the poller that finds the new pid may nap long
    enough not to compete for the 2 cores with what it measures (a poller
    that scans every 0.1 ms costs a multi-step respawn path more than a bare
    fork+exec, measured). Without tracefs, the poller's own timestamps are
    used and the report says so."""

    BASE = "/sys/kernel/tracing"

    def __init__(self):
        self.dir = None
        if os.geteuid() != 0:
            return
        if not os.path.isdir(os.path.join(self.BASE, "instances")):
            # Not mounted (a fresh container): mount it, as root may.
            subprocess.run(["mount", "-t", "tracefs", "nodev", self.BASE],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not os.path.isdir(os.path.join(self.BASE, "instances")):
                return
        path = os.path.join(self.BASE, "instances", f"usvc-bench-{os.getpid()}")
        try:
            os.mkdir(path)
            self.dir = path
            self._write("trace_clock", "mono")
            self._write("buffer_size_kb", "2048")
            self._write("events/signal/signal_generate/filter", "sig == 9")
            self._write("events/signal/signal_generate/enable", "1")
            self._write("events/sched/sched_process_exec/enable", "1")
            self._write("tracing_on", "1")
        except OSError:
            self.close()

    def _write(self, name, value):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(value)

    def times(self):
        """({killed pid: first SIGKILL time}, {pid: [(exec time, program basename)]})."""
        kills, execs = {}, {}
        with open(os.path.join(self.dir, "trace"), errors="replace") as f:
            for line in f:
                if line.startswith("#"):
                    continue
                head, sep, rest = line.partition(": ")
                if not sep:
                    continue
                try:
                    t = float(head.split()[-1].rstrip(":"))
                except ValueError:
                    continue
                fields = dict(kv.split("=", 1) for kv in rest.split()[1:] if "=" in kv)
                if rest.startswith("signal_generate:") and fields.get("sig") == "9":
                    kills.setdefault(int(fields["pid"]), t)
                elif rest.startswith("sched_process_exec:"):
                    execs.setdefault(int(fields["pid"]), []).append(
                        (t, os.path.basename(fields.get("filename", ""))))
        return kills, execs

    def close(self):
        if self.dir:
            try:
                self._write("tracing_on", "0")
                os.rmdir(self.dir)
            except OSError:
                pass
            self.dir = None


def measure_respawn(sups, kills, warmup):
    """SIGKILL each supervisor's job `kills` times; time kill -> new exec.

    Round-robin over the supervisors: the rest each one needs before a kill
    (runsv/s6 throttle runs shorter than 1 s) is spent measuring the others,
    which keeps the run short without ever killing a job inside its
    supervisor's throttle window. Only one supervisor is measured at a time.
    """
    tracer = ExecTracer()
    try:
        return respawn_rounds(sups, kills, warmup, tracer)
    finally:
        tracer.close()


def respawn_rounds(sups, kills, warmup, tracer):
    state = {}
    for s in sups:
        state[s] = dict(pid=None, up=now(), samples=[], pairs=[], error=None)
        try:
            state[s]["pid"] = s.job_pid(0)
        except (BenchError, OSError) as e:
            state[s]["error"] = str(e)
    for rnd in range(warmup + kills):
        for s in sups:
            st = state[s]
            if st["error"]:
                continue
            rest = st["up"] + s.stable_s + STABLE_MARGIN_S - now()
            if rest > 0:
                time.sleep(rest)
            root = s.job_roots()[0]
            old = st["pid"]
            try:
                t0 = now()
                os.kill(old, signal.SIGKILL)
                new, t1 = wait_for_exec(root, old, s.argv, t0, t0 + RESPAWN_TIMEOUT_S,
                                        fine=tracer.dir is None)
            except (BenchError, OSError) as e:
                st["error"] = str(e)
                continue
            st["pid"], st["up"] = new, t1
            if rnd >= warmup:
                st["samples"].append(t1 - t0)
                st["pairs"].append((old, new))
    try:
        traced = tracer.times() if tracer.dir else None
    except OSError:  # the trace could not be read: the poller's times stand
        traced = None
    out = {}
    for s in sups:
        st = state[s]
        if st["error"]:
            out[s.name] = dict(status="error: " + st["error"])
            continue
        samples, method = st["samples"], "proc polling"
        if traced:
            kills_at, execs_at = traced
            program = os.path.basename(s.argv[0])
            try:
                samples = [next(t for t, name in execs_at[new] if name == program) - kills_at[old]
                           for old, new in st["pairs"]]
                method = "kernel tracepoints"
            except (KeyError, StopIteration):
                out[s.name] = dict(status="error: a kill or an exec is missing from the trace")
                continue
        res = dict(status="ok", method=method, **summary_ms(samples),
                   samples_ms=[round(x * 1000, 3) for x in samples])
        # The pid we found must be the one the supervisor itself reports.
        try:
            reported = s.job_pid(0)
        except (BenchError, OSError) as e:
            reported = f"nothing ({e})"
        if reported != st["pid"]:
            res["status"] = f"error: found pid {st['pid']}, supervisor reports {reported}"
        out[s.name] = res
    return out


def phase_respawn(r):
    r.log(f"respawn: {r.cfg['kills']} kills per supervisor")
    r.method["respawn"] = method()
    sups = r.start_side_by_side("respawn", SUPERVISORS, 1, lambda s: JOB_ARGV)
    try:
        for sup in [s for s in sups if isinstance(s, Usvc)]:
            try:
                # Any run counts as stable, so every kill restarts at once.
                sup.cli("conf", sup.name_of(0), "stable-after", f"{sup.stable_s:g}")
                sup.cli("restart", sup.name_of(0))
            except BenchError as e:
                sups.remove(sup)
                r.fail("respawn", sup, e)
        res = measure_respawn(sups, r.cfg["kills"], r.cfg["warmup"])
        r.record("respawn", res)
    finally:
        r.finish(sups)

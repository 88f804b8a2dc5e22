"""What every phase shares: the job, run sizes, errors, the clock, /proc
readers, subprocess timing, summary statistics and process tracking."""

import os
import random
import shlex
import signal
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)

# The long-running job. Matching its argv (basename of argv[0] + the rest) in
# /proc/PID/cmdline is how "the replacement has really exec'd" is detected: a
# forked child that has not exec'd yet still shows its parent's cmdline.
JOB_ARGV = ["sleep", "1000"]

# Run sizes: a full run, and the smoke run `make test` does so the harness cannot rot.
FULL = dict(kills=50, warmup=1, jobs=100, scale=(10, 100, 1000), cli_runs=15,
            start_n=100, crash_s=30.0)
SMOKE = dict(kills=3, warmup=0, jobs=3, scale=(3,), cli_runs=3,
             start_n=3, crash_s=2.0)


class BenchError(Exception):
    """A measurement could not be taken; recorded, the run goes on."""


class NotAvailable(Exception):
    """A supervisor is not installed / not built; its rows say so."""


now = time.perf_counter
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(state, ppid, utime+stime ticks, starttime) from /proc/PID/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and ')': fields start after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    return (fields[0].decode(), int(fields[1]),
            int(fields[11]) + int(fields[12]), int(fields[19]))


def cpu_seconds(pid):
    st = proc_stat(pid)
    if st is None:
        raise BenchError(f"pid {pid} vanished while measuring CPU")
    return st[2] / CLK_TCK


def cpu_ns(pid):
    """CPU time in ns from the scheduler (/proc/PID/task/*/schedstat, first
    field): the same quantity as utime+stime without its 10 ms ticks."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def uss_kib(pid):
    """Private memory (Private_Clean + Private_Dirty) of one process, KiB."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def children(pid):
    """Direct children of every thread of pid (children files are per thread)."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out.extend(kids)
        todo.extend(kids)
    return out


def argv_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.split(b"\0")[:-1] if raw else []


def runs_program(pid, argv):
    """True once pid has exec'd argv (argv[0] may be a path or a bare name)."""
    got = argv_of(pid)
    if not got or len(got) != len(argv):
        return False
    return (os.path.basename(got[0]) == os.fsencode(os.path.basename(argv[0]))
            and got[1:] == [os.fsencode(a) for a in argv[1:]])


def find_program(root, argv):
    """Descendants of root that run argv."""
    return [p for p in descendants(root) if runs_program(p, argv)]


def wait_until(predicate, timeout, what, interval=0.02):
    deadline = now() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if now() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def run(argv, timeout=60, env=None, check=True, cwd=None):
    try:
        cp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=cwd,
                            timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{shlex.join(argv)}` took longer than {timeout} s")
    if check and cp.returncode != 0:
        err = cp.stderr.decode(errors="replace").strip().splitlines()
        raise BenchError(f"`{shlex.join(argv[:6])}` exit {cp.returncode}: "
                         f"{err[-1] if err else ''}")
    return cp


def timed(argv, env=None, timeout=120, check=True):
    """Wall seconds of one command (fork+exec of the client included, as a
    user at a prompt pays it), plus its CompletedProcess."""
    t0 = now()
    cp = run(argv, timeout=timeout, env=env, check=check)
    return now() - t0, cp


def median(xs):
    return statistics.median(xs)


def p95(xs):
    """Nearest-rank 95th percentile."""
    s = sorted(xs)
    return s[max(0, -(-95 * len(s) // 100) - 1)]


def summary_ms(seconds):
    ms = [x * 1000 for x in seconds]
    return dict(n=len(ms), median_ms=round(median(ms), 3), p95_ms=round(p95(ms), 3),
                min_ms=round(min(ms), 3), max_ms=round(max(ms), 3))


# The interval a gap between two medians is judged by (median_gap).
GAP_CONFIDENCE = 0.95
GAP_RESAMPLES = 2000


def median_gap(a, b, confidence=GAP_CONFIDENCE, resamples=GAP_RESAMPLES):
    """median(a) - median(b) and a percentile-bootstrap interval for it: both
    sample lists are resampled with replacement `resamples` times and the
    central `confidence` share of the resampled gaps is kept. The seed is
    fixed, so the same samples always give the same interval (a report
    rendered again from its JSON says the same)."""
    rng = random.Random(0)
    gaps = sorted(median(rng.choices(a, k=len(a))) - median(rng.choices(b, k=len(b)))
                  for _ in range(resamples))
    tail = (1 - confidence) / 2
    return dict(gap=median(a) - median(b), low=gaps[int(tail * resamples)],
                high=gaps[int((1 - tail) * resamples) - 1],
                confidence=confidence, resamples=resamples, n_a=len(a), n_b=len(b))


class Tracked:
    """Snapshot of processes (pid + start time, so a reused pid is never
    touched) that must all be gone after a supervisor is torn down."""

    def __init__(self):
        self.procs = {}

    def add_tree(self, roots):
        for root in roots:
            for pid in [root] + descendants(root):
                st = proc_stat(pid)
                if st is not None and st[0] != "Z":
                    self.procs[pid] = st[3]

    def alive(self):
        out = []
        for pid, start in self.procs.items():
            st = proc_stat(pid)
            # A zombie is gone for our purpose: it only waits for a parent
            # (possibly pid 1) to reap it.
            if st is not None and st[3] == start and st[0] != "Z":
                out.append(pid)
        return out

    def reap_or_kill(self, timeout=10.0):
        """Wait for every tracked process to exit; SIGKILL survivors.
        Returns the survivors' descriptions (empty when clean)."""
        deadline = now() + timeout
        while self.alive() and now() < deadline:
            time.sleep(0.05)
        left = self.alive()
        desc = [f"{p} {b' '.join(argv_of(p) or []).decode(errors='replace')}"
                for p in left]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return desc


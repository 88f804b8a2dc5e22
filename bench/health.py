#!/usr/bin/env python3
"""Health's costs: how soon a dependent runs once what it is `after` opens its
port, and the CPU of runners probing `tcp:` health every second.

1. Port open to dependent exec'd. Per trial, a fresh pair in one USVC_HOME:
   `db-N` started with `--ready tcp:PORT` (default ready-interval), whose
   program sleeps a random 0.4 to 0.7 s (so the port opens at any phase of the
   probe's tick), then binds and listens and writes the wall-clock time
   right after listen() returned; `app-N` started `--after db-N` (its `start`
   must say `waiting`), whose program is bash writing `$EPOCHREALTIME` as its
   first command. The figure is the second time minus the first: the probe's
   wait, the connect, the runner's state write, the dependent's runner
   learning of it, the spawn, the exec, and bash's start-up (about 1 ms: an
   upper bound of the exec moment). Median over the trials. Each trial also
   says whether the dependent's runner had inotify (see has_inotify).

2. CPU of N runners (100) each probing `tcp:` health every second
   (`job.health-interval 1`) against one listener this script runs (its
   accepts are counted, to show the probes happen; its own CPU is not
   measured: the remote side is none of usvc's): the runners' CPU time from
   /proc/PID/task/*/schedstat (to the ns) over the window, over the window's
   wall time, as a percentage of one core. utime + stime from /proc/PID/stat
   is given beside it: it counts whole 10 ms ticks, and one runner's CPU over
   the window is less than a tick, so each runner's share is mostly floored
   away. Measured once every job is running and has passed a check.

3. The floor under (2), in the same run, right after it: as many copies of a
   bare C program (FLOOR_CHECKER, compiled here with the first of cc, clang,
   gcc; the row says it was skipped, and why, without one), each doing the
   runner's check (socket non-blocking, SO_LINGER 0, connect, poll until
   writable, getsockopt SO_ERROR, close) once a second, its wait a poll
   timeout like the runner's, against a listener of the same kind for the
   same window; their CPU measured the same way (schedstat). What a check a
   second costs on this machine whoever makes it: the target's explanation
   compares the runner's CPU per check with it.

Targets (bench/usvc_bench/targets.py, the one place they are set):
`ready_to_dependent` and `health_cpu`.

Standalone: python3 bench/health.py --usvc PATH [--smoke]
As a phase of bench/bench.py (--only health): run(usvc_path, smoke=False) -> rows.
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from usvc_bench.common import cpu_ns  # noqa: E402 (after the path it is found on)
from usvc_bench.targets import TARGETS  # noqa: E402

LIMITS = {t["key"]: t for t in TARGETS}

# The port-opener: sleeps, listens, writes the time right after listen(), then accepts forever.
OPENER = r"""
import socket, sys, time
port, stamp, delay = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
time.sleep(delay)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
opened = time.time()
with open(stamp + ".tmp", "w") as f:
    f.write(repr(opened))
import os
os.rename(stamp + ".tmp", stamp)
while True:
    c, _ = s.accept()
    c.close()
"""

# The floor's checker: the runner's tcp: check (CShims usvc_tcp_connect_start,
# then usvc_socket_error once its poll loop sees the socket writable) and
# nothing else. argv: port, seconds before its first check (so the copies do
# not all wake at once; the runners do not either).
FLOOR_CHECKER = r"""
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  double next = now() + atof(argv[2]);
  for (;;) {
    double wait = next - now();
    if (wait > 0) poll(NULL, 0, (int)(wait * 1000) + 1);
    next += 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return 1;
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS) return 1;
    struct pollfd writable = {.fd = fd, .events = POLLOUT};
    if (poll(&writable, 1, 1000) != 1) return 1;
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0 || error != 0) return 1;
    close(fd);
  }
}
"""

# The dependent: its first command writes the wall-clock time (bash 5's $EPOCHREALTIME).
DEPENDENT = 'printf %s "$EPOCHREALTIME" > "$0.tmp" && mv "$0.tmp" "$0"; exec sleep 100000'


class Home:
    """A temporary USVC_HOME; every job and its tmux server end with close()."""

    def __init__(self, usvc, prefix):
        self.usvc = usvc
        self.root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")  # short: the tmux socket path
        self.env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "USVC_JOB", "USVC_GROUP")}
        self.env.update(USVC_HOME=os.path.join(self.root, "h"), NO_COLOR="1")

    def call(self, *args, timeout=60):
        result = subprocess.run([self.usvc, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"usvc {' '.join(args[:3])}: {result.stderr.strip()}")
        return result.stdout

    def close(self):
        subprocess.run([self.usvc, "shutdown"], env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_file(path, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            time.sleep(0.005)
    raise RuntimeError(f"{os.path.basename(path)} was not written within its deadline")


def ready_to_dependent(usvc, trials):
    """Milliseconds from db's listen() to app's first command, one per trial."""
    bash = shutil.which("bash")
    if not bash:
        raise RuntimeError("bash (for $EPOCHREALTIME) not found")
    home = Home(usvc, "uhr.")
    samples = []
    without_inotify = 0
    try:
        opener = os.path.join(home.root, "opener.py")
        with open(opener, "w") as f:
            f.write(OPENER)
        for trial in range(1, trials + 1):
            port = free_port()
            opened_file = os.path.join(home.root, f"opened-{trial}")
            exec_file = os.path.join(home.root, f"exec-{trial}")
            delay = random.uniform(0.4, 0.7)
            home.call("start", "--ready", f"tcp:{port}", f"db{trial}", sys.executable, opener, str(port),
                      opened_file, f"{delay:.3f}")
            said = home.call("start", "--after", f"db{trial}", f"app{trial}", bash, "-c", DEPENDENT, exec_file)
            if not said.startswith("waiting "):
                raise RuntimeError(f"trial {trial}: the dependent did not wait (the port opened too soon): {said!r}")
            deadline = time.monotonic() + 10
            opened = float(wait_for_file(opened_file, deadline))
            executed = float(wait_for_file(exec_file, deadline))
            samples.append((executed - opened) * 1000)
            runner = json.loads(home.call("status", "--json", f"app{trial}"))["jobs"][0]["runner_pid"]
            if not has_inotify(runner):
                without_inotify += 1
            home.call("rm", f"app{trial}", f"db{trial}")
    finally:
        home.close()
    return samples, without_inotify


def has_inotify(pid):
    """Whether the process holds an inotify descriptor. A runner gets none
    when its user's inotify instances (fs.inotify.max_user_instances, 128 by
    default) are all in use: it then looks at the states on a 250 ms timer."""
    directory = f"/proc/{pid}/fd"
    for fd in os.listdir(directory):
        try:
            if os.readlink(os.path.join(directory, fd)) == "anon_inode:inotify":
                return True
        except OSError:
            continue
    return False


class Listener:
    """A TCP listener on 127.0.0.1 that accepts and closes, counting connections."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(1024)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            connection.close()
            self.accepted += 1

    def close(self):
        self.socket.close()


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def health_cpu(usvc, jobs, seconds):
    """(percent of one core, the same from utime + stime, window seconds, checks answered in the window)."""
    listener = Listener()
    home = Home(usvc, "uhc.")
    try:
        home.call("start", "-n", str(jobs), "--health", f"tcp:{listener.port}", "hc", "sleep", "100000", timeout=300)
        for index in range(1, jobs + 1):
            home.call("conf", f"hc-{index}", "health-interval", "1")
        home.call("restart", "hc", timeout=300)
        # Every job running and past one check of the new interval.
        deadline = time.monotonic() + 60
        while True:
            status = json.loads(home.call("status", "--json", "hc"))
            rows = status["jobs"]
            if len(rows) == jobs and all(r["state"] == "running" and r.get("health") == "ok" for r in rows):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every job running with health ok within 60 s: {[r['state'] for r in rows]}")
            time.sleep(0.5)
        runners = [r["runner_pid"] for r in rows]
        clock = os.sysconf("SC_CLK_TCK")
        accepted0, t0 = listener.accepted, time.monotonic()
        c0, n0 = sum(ticks(p) for p in runners), sum(cpu_ns(p) for p in runners)
        time.sleep(seconds)
        accepted1, t1 = listener.accepted, time.monotonic()
        c1, n1 = sum(ticks(p) for p in runners), sum(cpu_ns(p) for p in runners)
        failing = [r["name"] for r in json.loads(home.call("status", "--json", "hc"))["jobs"] if r.get("health") != "ok"]
        if failing:
            raise RuntimeError(f"health checks failed during the window: {failing[:5]}")
        window = t1 - t0
        return (n1 - n0) / 1e9 / window * 100, (c1 - c0) / clock / window * 100, window, accepted1 - accepted0
    finally:
        home.close()
        listener.close()


def c_compiler():
    """The first C compiler on PATH (the Swift toolchain ships clang), or None."""
    return next((path for path in map(shutil.which, ("cc", "clang", "gcc")) if path), None)


def health_cpu_floor(compiler, jobs, seconds):
    """health_cpu's figures for `jobs` copies of FLOOR_CHECKER: (percent of
    one core, window seconds, checks answered in the window)."""
    root = tempfile.mkdtemp(prefix="uhf.", dir="/tmp")
    listener = Listener()
    checkers = []
    try:
        source, binary = os.path.join(root, "checker.c"), os.path.join(root, "checker")
        with open(source, "w") as f:
            f.write(FLOOR_CHECKER)
        built = subprocess.run([compiler, "-O2", "-o", binary, source], capture_output=True, text=True, timeout=120)
        if built.returncode != 0:
            raise RuntimeError(f"{os.path.basename(compiler)} failed: {built.stderr.strip()[-300:]}")
        for _ in range(jobs):
            checkers.append(subprocess.Popen([binary, str(listener.port), f"{random.uniform(0, 1):.3f}"],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        # Every copy past its first check (each starts within 1 s).
        deadline = time.monotonic() + 10
        while listener.accepted < jobs:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{listener.accepted} of {jobs} checkers connected within 10 s")
            time.sleep(0.1)
        pids = [c.pid for c in checkers]
        accepted0, t0 = listener.accepted, time.monotonic()
        n0 = sum(cpu_ns(p) for p in pids)
        time.sleep(seconds)
        accepted1, t1 = listener.accepted, time.monotonic()
        n1 = sum(cpu_ns(p) for p in pids)
        ended = [c.returncode for c in checkers if c.poll() is not None]
        if ended:
            raise RuntimeError(f"{len(ended)} checkers ended during the window (exit {ended[0]}: a check failed)")
        window = t1 - t0
        return (n1 - n0) / 1e9 / window * 100, window, accepted1 - accepted0
    finally:
        for checker in checkers:
            checker.kill()
            checker.wait()
        listener.close()
        shutil.rmtree(root, ignore_errors=True)


def floor_row(jobs, seconds, mode):
    """The row of the floor under health_cpu: measured, or skipped/failed with why."""
    base = dict(key="health_cpu_floor", jobs=jobs, target="- (the floor: not usvc)", verdict="-")
    what = f"CPU of {jobs} bare C checkers doing the same tcp: check every 1 s"
    compiler = c_compiler()
    if not compiler:
        return dict(base, measure=what + mode, status="skipped", value="not measured: no C compiler (cc, clang, gcc)",
                    unit="", detail="")
    try:
        percent, window, checks = health_cpu_floor(compiler, jobs, seconds)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        return dict(base, measure=what + mode, status="error", value=f"not measured: {e}", unit="", detail="")
    per_check = percent / 100 * window / max(1, checks) * 1e6
    return dict(base, measure=f"{what}, {window:.1f} s{mode}", status="ok", value=round(percent, 3),
                unit="% of one core", cpu_us_per_check=round(per_check, 1),
                detail=f"{checks} checks answered ({checks / window / jobs:.2f} per checker per s), "
                       f"{per_check:.0f} µs of CPU each; built with {os.path.basename(compiler)} -O2")


def verdict(value, limit, unit):
    return "met" if value <= limit else f"missed by {value - limit:.2f} {unit}"


def run(usvc_path, smoke=False):
    usvc = os.path.abspath(usvc_path)
    mode = " (smoke)" if smoke else ""
    trials = 2 if smoke else 21
    samples, without_inotify = ready_to_dependent(usvc, trials)
    inotify_note = "" if not without_inotify else (
        f"; {without_inotify} of {trials} dependents' runners had no inotify (this user's "
        "fs.inotify.max_user_instances all in use): they looked on a 250 ms timer")
    median = statistics.median(samples)
    ready_limit = LIMITS["ready_to_dependent"]["limit"]
    jobs = 5 if smoke else LIMITS["health_cpu"]["jobs"]
    seconds = 3 if smoke else 30
    percent, percent_ticks, window, checks = health_cpu(usvc, jobs, seconds)
    per_check = percent / 100 * window / max(1, checks) * 1e6
    floor = floor_row(jobs, seconds, mode)
    cpu_limit = LIMITS["health_cpu"]["limit"]
    return [
        dict(key="ready_to_dependent",
             measure=f"port open to dependent exec'd (after, tcp: readiness, ready-interval 0.1 s), {trials} trials{mode}",
             value=round(median, 2), unit="ms (median)", jobs=1,
             detail=f"min {min(samples):.1f}, max {max(samples):.1f} ms{inotify_note}",
             target=f"<= {ready_limit:g} ms", verdict=verdict(median, ready_limit, "ms")),
        dict(key="health_cpu",
             measure=f"CPU of {jobs} runners probing tcp: health every 1 s, {window:.1f} s{mode}",
             value=round(percent, 3), unit="% of one core", jobs=jobs, cpu_us_per_check=round(per_check, 1),
             detail=f"{checks} checks answered ({checks / window / jobs:.2f} per runner per s), "
                    f"{per_check:.0f} µs of CPU each; "
                    f"{percent_ticks:.3f}% from utime + stime (whole ticks)",
             # A smoke run's few runners are not the target's count.
             target=f"<= {cpu_limit:g}%", verdict="-" if smoke else verdict(percent, cpu_limit, "points")),
        floor,
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usvc", required=True, help="the usvc binary (usvc-runner beside it; a release build for real figures)")
    parser.add_argument("--smoke", action="store_true", help="2 trials, 5 runners (and 5 floor checkers) for 3 s")
    args = parser.parse_args()
    rows = run(args.usvc, smoke=args.smoke)
    width = max(len(r["measure"]) for r in rows)
    for r in rows:
        print(f"{r['measure']:<{width}}  {r['value']:>8} {r['unit']:<14}  {r['detail']:<44}  target {r['target']:<10}  {r['verdict']}")
    return 0 if all(r["verdict"] in ("met", "-") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

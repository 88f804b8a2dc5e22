#!/usr/bin/env python3
"""The board's cost: CPU of `usvc top` watching 100 local jobs for 30 s, the
bytes it writes to the terminal per refresh once nothing on its job rows changes,
and CPU of `usvc top --hosts` watching 100 hosts for 30 s.

`usvc top` runs on a pseudo-terminal this script holds (140 x 40, the size the
tests use), which stands in for the user's terminal or a tmux pane and lets
every byte written be counted. CPU is the board process's utime + stime from
/proc/PID/stat over the window. Job rows stop changing once every job has
been up a minute (the board then shows their age in minutes: `up 1m`); the
system line's figures (cpu %, load) still move, so "nothing changed" below
means: no job row changed. Each refresh that changes something is one
write(2) of the changed cells, so refreshes that wrote nothing are counted too.

Across hosts: the 100 hosts are bench/fleet.py's (ssh aliases of one loopback
sshd, each logging in as a plain user to a USVC_HOME of its own with 5 jobs).
The board holds one ssh session per host; its figure is the CPU (utime +
stime, to the ns from /proc/PID/task/*/schedstat) over the window of the board process, every
descendant of it (the ssh clients) and the control masters those clients
started (`ssh: PATH [mux]`, daemons of their own, but working for the board),
and nothing of the remote side (sshd, the remote usvc). Through a control master
the client ssh hands its pipes to the master (fd passing), so the master does
the work and the client waits. Needs root (useradd,
sshd), like fleet.py; otherwise its row says it was not measured.

Standalone: python3 bench/board.py --usvc PATH [--smoke] [--only local|hosts]
As a phase of bench/bench.py: run(usvc_path, smoke=False) -> rows.
"""

import argparse
import fcntl
import os
import pty
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

ROWS, COLUMNS = 40, 140
CPU_TARGET_PERCENT = 2.0
HOSTS_CPU_TARGET_PERCENT = 10.0
# "Near zero": at most 1% of what redrawing the whole screen costs.
QUIET_TARGET_FRACTION = 0.01


def _ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


class _Terminal:
    """A pty whose far end runs `usvc top`; counts what it writes, with times."""

    def __init__(self, argv, env):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.master = master
        self.chunks = []  # (monotonic time, bytes)
        self.lock = threading.Lock()
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True)
        os.close(slave)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.chunks.append((time.monotonic(), len(data)))

    def between(self, start, end):
        with self.lock:
            return [n for t, n in self.chunks if start <= t < end]

    def wait_for_output(self, deadline):
        while time.monotonic() < deadline:
            with self.lock:
                if self.chunks:
                    return self.chunks[0][0]
            if self.process.poll() is not None:
                raise RuntimeError(f"usvc top exited with {self.process.returncode}")
            time.sleep(0.05)
        raise RuntimeError("usvc top wrote nothing within its deadline")

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        os.close(self.master)


def _children():
    """{pid: parent pid} of every process now."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return parents


def _descendants(pid):
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cpu_ns(pid):
    """Nanoseconds on a cpu of every thread of `pid` (/proc/PID/task/*/schedstat, first field):
    exact, where utime/stime round each process down to whole clock ticks, and a
    process that wakes once a second for ~50 µs never reaches one."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def _board_side(board_pid, control_dir):
    """{pid: cpu ns} of the board, its descendants and the control masters in control_dir."""
    pids = {board_pid} | _descendants(board_pid)
    pids |= {p for p in _children() if "[mux]" in _cmdline(p) and control_dir in _cmdline(p)}
    used = {}
    for pid in pids:
        try:
            used[pid] = _cpu_ns(pid)
        except (OSError, IndexError, ValueError):
            pass
    return used


def run_hosts(usvc_path, smoke=False):
    """CPU of `usvc top --hosts` over `hosts` hosts (fleet.py's), its ssh children and
    control masters included, the remote side excluded; one row."""
    hosts = 3 if smoke else 100
    seconds = 3 if smoke else 30
    mode = " (smoke)" if smoke else ""
    measure = f"cpu of usvc top --hosts, {hosts} hosts x 5 jobs, {seconds} s, its ssh and control masters included{mode}"
    base = dict(measure=measure, key="hosts_cpu", hosts=hosts, seconds=seconds,
                target=f"<= {HOSTS_CPU_TARGET_PERCENT:g}%")
    if os.geteuid() != 0:
        return [dict(base, value="not measured: needs root (useradd, sshd)", verdict="n/a", status="skipped")]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fleet  # bench/fleet.py: the loopback hosts
    usvc = os.path.abspath(usvc_path)
    fleet_hosts = fleet.Hosts(usvc, hosts)
    terminal = None
    try:
        local = f"{fleet_hosts.dir}/local"
        os.makedirs(local, 0o700, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "USVC_JOB", "USVC_GROUP")}
        env.update(USVC_HOME=local, TERM="xterm-256color", USVC_SSH=fleet_hosts.ssh[False],
                   USVC_REMOTE_COMMAND=fleet_hosts.usvc)
        terminal = _Terminal([usvc, "top", "-d", "1", "--hosts-file", f"{fleet_hosts.dir}/hostlist"], env)
        terminal.wait_for_output(time.monotonic() + 60)

        def feeding():
            """Remote usvc runs of the board's sessions now (one per host once all are up)."""
            return len(fleet_hosts.our_pids(lambda cmd, e: "--stdin-args" in cmd and f"USVC_HOME={fleet_hosts.dir}/home-" in e))
        deadline = time.monotonic() + 180
        while feeding() < hosts:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {feeding()} of {hosts} hosts' sessions came up")
            if terminal.process.poll() is not None:
                raise RuntimeError(f"usvc top exited with {terminal.process.returncode}")
            time.sleep(0.5)
        # Connecting (key exchange, logins) is over; what is left is the steady state.
        time.sleep(3)
        control_dir = local + "/ssh"
        before, t0 = _board_side(terminal.process.pid, control_dir), time.monotonic()
        time.sleep(seconds)
        after, t1 = _board_side(terminal.process.pid, control_dir), time.monotonic()
        if terminal.process.poll() is not None:
            raise RuntimeError(f"usvc top exited with {terminal.process.returncode} during the run")
        sessions = feeding()

        def share(pids):
            return sum(after[p] - before.get(p, 0) for p in pids) / 1e9 / (t1 - t0) * 100
        board = share([terminal.process.pid])
        master_pids = [p for p in after if "[mux]" in _cmdline(p)]
        masters = share(master_pids)
        client_pids = [p for p in after if p != terminal.process.pid and p not in master_pids]
        clients = share(client_pids)
        client_count = len(client_pids)
        total = board + clients + masters
    finally:
        if terminal:
            terminal.close()
        fleet_hosts.close()
    return [dict(base, value=f"{total:.2f}% of one core", cpu_percent=round(total, 2),
                 detail=f"board {board:.2f}%, {client_count} ssh clients {clients:.2f}%, "
                        f"{len(master_pids)} control masters {masters:.2f}%; {sessions} of {hosts} sessions up at the end",
                 verdict="met" if total <= HOSTS_CPU_TARGET_PERCENT
                 else f"missed by {total - HOSTS_CPU_TARGET_PERCENT:.2f} points", status="ok")]


def run(usvc_path, smoke=False, only=None):
    """The local board's rows, then the hosts board's (`only`: "local" or "hosts")."""
    rows = [] if only == "hosts" else run_local(usvc_path, smoke)
    return rows + ([] if only == "local" else run_hosts(usvc_path, smoke))


def run_local(usvc_path, smoke=False):
    usvc = os.path.abspath(usvc_path)
    jobs = 10 if smoke else 100
    cpu_seconds = 3 if smoke else 30
    quiet_refreshes = 3 if smoke else 10
    interval = 1.0
    root = tempfile.mkdtemp(prefix="ubd.", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "USVC_JOB", "USVC_GROUP", "NO_COLOR")}
    env.update(USVC_HOME=root + "/h", TERM="xterm-256color")
    terminal = None
    try:
        subprocess.run([usvc, "start", "-n", str(jobs), "board", "sleep", "100000"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        started = time.monotonic()
        terminal = _Terminal([usvc, "top", "-d", str(interval)], env)
        first = terminal.wait_for_output(time.monotonic() + 30)
        # The first refresh: entering the screen and drawing all of it.
        time.sleep(interval / 2)
        full_frame = sum(terminal.between(first, first + interval / 2))

        clock = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), _ticks(terminal.process.pid)
        time.sleep(cpu_seconds)
        t1, c1 = time.monotonic(), _ticks(terminal.process.pid)
        cpu_percent = (c1 - c0) / clock / (t1 - t0) * 100

        # Quiet: every job up over a minute, so no job row changes from one refresh to the next.
        if not smoke:
            time.sleep(max(0.0, started + 62 - time.monotonic()))
        q0 = time.monotonic()
        time.sleep(quiet_refreshes * interval)
        writes = terminal.between(q0, q0 + quiet_refreshes * interval)
        per_refresh = sum(writes) / quiet_refreshes
        if terminal.process.poll() is not None:
            raise RuntimeError(f"usvc top exited with {terminal.process.returncode} during the run")
    finally:
        if terminal:
            terminal.close()
        subprocess.run([usvc, "shutdown"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)

    mode = " (smoke)" if smoke else ""
    quiet_limit = full_frame * QUIET_TARGET_FRACTION
    return [
        dict(measure=f"cpu of usvc top, {jobs} local jobs, {cpu_seconds} s{mode}",
             value=f"{cpu_percent:.2f}% of one core", target=f"<= {CPU_TARGET_PERCENT:g}%",
             key="local_cpu", jobs=jobs, seconds=cpu_seconds, cpu_percent=round(cpu_percent, 2),
             verdict="met" if cpu_percent <= CPU_TARGET_PERCENT
             else f"missed by {cpu_percent - CPU_TARGET_PERCENT:.2f} points"),
        dict(measure=f"bytes written per refresh, no job row changing, {quiet_refreshes} refreshes{mode}",
             value=f"{per_refresh:.0f} B ({quiet_refreshes - len(writes)} of {quiet_refreshes} refreshes wrote nothing)",
             target=f"<= 1% of a full frame ({quiet_limit:.0f} B)",
             # A smoke run does not wait the minute after which job ages stop ticking.
             verdict="-" if smoke else "met" if per_refresh <= quiet_limit
             else f"missed by {per_refresh - quiet_limit:.0f} B"),
        dict(measure=f"bytes of the first frame (whole screen, {COLUMNS}x{ROWS}){mode}",
             value=f"{full_frame} B", target="-", verdict="-"),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usvc", required=True, help="the usvc binary (usvc-runner beside it)")
    parser.add_argument("--smoke", action="store_true", help="10 jobs and 3 hosts, a few seconds")
    parser.add_argument("--only", choices=("local", "hosts"), help="one of the two boards")
    args = parser.parse_args()
    rows = run(args.usvc, smoke=args.smoke, only=args.only)
    width = max(len(r["measure"]) for r in rows)
    for r in rows:
        print(f"{r['measure']:<{width}}  {r['value']:<48}  target {r['target']:<32}  {r['verdict']}"
              + (f"  ({r['detail']})" if r.get("detail") else ""))
    return 0 if all(r["verdict"] in ("met", "-", "n/a") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The board's cost: CPU of `usvc top` watching 100 local jobs for 30 s, and the
bytes it writes to the terminal per refresh once nothing on its job rows changes.

`usvc top` runs on a pseudo-terminal this script holds (140 x 40, the size the
tests use), which stands in for the user's terminal or a tmux pane and lets
every byte written be counted. CPU is the board process's utime + stime from
/proc/PID/stat over the window. Job rows stop changing once every job has
been up a minute (the board then shows their age in minutes: `up 1m`); the
system line's figures (cpu %, load) still move, so "nothing changed" below
means: no job row changed. Each refresh that changes something is one
write(2) of the changed cells, so refreshes that wrote nothing are counted too.

Standalone: python3 bench/board.py --usvc PATH [--smoke]
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


def run(usvc_path, smoke=False):
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
    parser.add_argument("--smoke", action="store_true", help="10 jobs, a few seconds")
    args = parser.parse_args()
    rows = run(args.usvc, smoke=args.smoke)
    width = max(len(r["measure"]) for r in rows)
    for r in rows:
        print(f"{r['measure']:<{width}}  {r['value']:<48}  target {r['target']:<32}  {r['verdict']}")
    return 0 if all(r["verdict"] in ("met", "-") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

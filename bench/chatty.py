#!/usr/bin/env python3
"""Chatty jobs under usvc (issue 11): what printing costs.

Python 3 standard library only. Two measurements, each in a fresh private
USVC_HOME, every figure taken in the run that prints it:

  a. tmux memory   USS of usvc's tmux server once JOBS jobs have each printed
                   LINES lines of WIDTH characters (then sleep); the runners'
                   median USS alongside.
  b. write time    one job writing BYTES of text lines as fast as it can: the
                   job's own time from first to last write, and the time until
                   its log holds every line, under usvc, straight to a file,
                   and to a bare pseudo-terminal read by a plain loop (the
                   floor for a job that has a terminal); the CPU the
                   supervisor side (runner + tmux server) spent per MB.

`run(usvc_path) -> rows` is what bench/bench.py calls; each row is a dict
(measure, subject, value, unit, and target/meets where the issue sets one).
The job programs are plain files (`chatty_job`, `WriterJob`), so peers
(runit + svlogd, supervisord, s6-log) can run the very same jobs.

Usage:
  python3 bench/chatty.py --usvc .build/release/usvc
  python3 bench/chatty.py --usvc .build/debug/usvc --jobs 10 --write-mb 20 --json out.json
"""

import argparse
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time

# The shared helpers are bench.py's (this file sits beside it, so `import bench`
# works standalone too). Note: when bench.py runs as __main__, its BenchError
# is not bench.BenchError: a caller there catches this module's errors as
# chatty.BenchError.
from bench import BenchError, Usvc, close_many, cpu_seconds, now, uss_kib, wait_until

TMUX_USS_TARGET_KIB = 24 * 1024   # (a) at 100 jobs of 3,000 lines of 120 characters
WRITE_VS_FILE_TARGET = 1.5        # (b) usvc within 1.5x of writing straight to a file
DONE_MARK = "CHATTY-DONE"


def say(msg):
    print(f"chatty: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The jobs: plain files any supervisor can run.
# --------------------------------------------------------------------------

def chatty_job(folder, lines, width):
    """argv of a job that prints `lines` lines of `width` characters (newline
    not counted), then DONE_MARK, then sleeps."""
    text = os.path.join(folder, "chatty.txt")
    with open(text, "w") as f:
        for i in range(lines):
            f.write(f"{i:08d} ".ljust(width, "x") + "\n")
    script = os.path.join(folder, "chatty.sh")
    with open(script, "w") as f:
        f.write(f'#!/bin/sh\ncat "$1"\necho {DONE_MARK}\nexec sleep 100000\n')
    os.chmod(script, 0o755)
    return [script, text]


WRITER = r"""
import sys, time
total, times = int(sys.argv[1]), sys.argv[2]
start = time.time()
write = sys.stdout.write
line = "x" * 111 + "\n"
for i in range(total // 121):
    write("%08d %s" % (i, line))
sys.stdout.flush()
end = time.time()
with open(times, "w") as f:
    f.write(f"{start} {end}\n")
"""


class WriterJob:
    """A job that writes total_bytes of 121-byte lines with Python's own
    buffering (line by line on a terminal, in blocks to a file or a pipe: what
    a real program does) and records its first and last moment in a file.
    `argv` waits for a line on the FIFO `go` first (so a supervisor is
    measured from a job already started), and after writing prints DONE_MARK
    and sleeps; `bare` only writes."""

    def __init__(self, folder, total_bytes):
        self.total_bytes = total_bytes
        program = os.path.join(folder, "writer.py")
        with open(program, "w") as f:
            f.write(WRITER)
        self.times = os.path.join(folder, "writer.times")
        self.go = os.path.join(folder, "writer.go")
        os.mkfifo(self.go, 0o600)
        script = os.path.join(folder, "writer.sh")
        with open(script, "w") as f:
            f.write('#!/bin/sh\nread word < "$4"\npython3 "$1" "$2" "$3"\n'
                    f"echo {DONE_MARK}\nexec sleep 100000\n")
        os.chmod(script, 0o755)
        self.bare = ["python3", program, str(total_bytes), self.times]
        self.argv = [script, program, str(total_bytes), self.times, self.go]

    def release(self):
        """Lets the started job write (blocks until it waits on the FIFO)."""
        with open(self.go, "w") as f:
            f.write("go\n")

    def seconds(self):
        with open(self.times) as f:
            start, end = map(float, f.read().split())
        return end - start


def tail_has(path, text, size=4096):
    """Whether the last `size` bytes of the file at path contain text."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return text.encode() in f.read()
    except FileNotFoundError:
        return False


def settle(pid, quiet=0.5, timeout=60):
    """Waits until the process used no CPU for `quiet` seconds (tmux parses
    pane output after the job wrote it)."""
    deadline = now() + timeout
    last = cpu_seconds(pid)
    while now() < deadline:
        time.sleep(quiet)
        cpu = cpu_seconds(pid)
        if cpu == last:
            return
        last = cpu


# --------------------------------------------------------------------------
# The measurements.
# --------------------------------------------------------------------------

def open_usvc(exe, group):
    sup = Usvc(exe)
    sup.group = group
    return sup


def close_usvc(sup):
    close_many([sup])
    if sup.leftovers:
        raise BenchError("; ".join(sup.leftovers))


def usvc_log(sup, i):
    return os.path.join(sup.home, "logs", sup.name_of(i) + ".log")


def tmux_memory(usvc, jobs, lines, width):
    sup = open_usvc(usvc, "chatty")
    try:
        t0 = now()
        sup.start(jobs, chatty_job(sup.dir, lines, width))
        for i in range(jobs):
            wait_until(lambda: tail_has(usvc_log(sup, i), DONE_MARK), 300,
                       f"{sup.name_of(i)} to print its {lines} lines")
        printed = now() - t0
        server = sup.shared_pids()[0]
        settle(server)
        runners = sorted(uss_kib(pid) for pid in sup.per_job_pids())
        tmux = uss_kib(server)
    finally:
        close_usvc(sup)
    say(f"tmux USS {tmux} KiB at {jobs} jobs x {lines} lines ({printed:.1f} s to print)")
    at_target_size = jobs == 100 and lines == 3000 and width == 120
    return [
        dict(measure="tmux server USS", subject="usvc", value=tmux, unit="KiB", jobs=jobs,
             lines=lines, width=width, target=TMUX_USS_TARGET_KIB if at_target_size else None,
             meets=(tmux <= TMUX_USS_TARGET_KIB) if at_target_size else None),
        dict(measure="runner USS (median)", subject="usvc", value=runners[len(runners) // 2],
             unit="KiB", jobs=jobs),
    ]


def write_to_file(total_bytes):
    folder = tempfile.mkdtemp(prefix="uc.", dir="/tmp")
    try:
        job = WriterJob(folder, total_bytes)
        t0 = now()
        with open(os.path.join(folder, "out.log"), "wb") as f:
            subprocess.run(job.bare, stdout=f, check=True)
        wall = now() - t0
        return dict(measure="write time", subject="file", value=round(job.seconds(), 3), unit="s",
                    bytes=total_bytes, until_complete=round(wall, 3))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_to_bare_pty(total_bytes):
    """The floor for any supervisor that gives the job a terminal: the same
    writer on a pseudo-terminal (set as usvc sets the job's: no OPOST) whose
    master end a plain loop reads and drops. On a terminal the writer's
    stdio flushes every line: one write per line instead of one per block."""
    folder = tempfile.mkdtemp(prefix="uc.", dir="/tmp")
    master, slave = pty.openpty()
    try:
        job = WriterJob(folder, total_bytes)
        attributes = termios.tcgetattr(slave)
        attributes[1] &= ~(termios.OPOST | termios.ONLCR)
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        t0 = now()
        process = subprocess.Popen(job.bare, stdout=slave, start_new_session=True)
        os.close(slave)
        slave = -1
        got = 0
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the writer closed its end
                break
            if not chunk:
                break
            got += len(chunk)
        process.wait()
        wall = now() - t0
        if got < total_bytes // 121 * 121:
            raise BenchError(f"bare pty: read {got} of {total_bytes} bytes")
        return dict(measure="write time", subject="pty", value=round(job.seconds(), 3), unit="s",
                    bytes=total_bytes, until_complete=round(wall, 3))
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
        shutil.rmtree(folder, ignore_errors=True)


def write_under_usvc(usvc, total_bytes):
    sup = open_usvc(usvc, "writer")
    try:
        job = WriterJob(sup.dir, total_bytes)
        sup.start(1, job.argv)
        runner, server = sup.per_job_pids()[0], sup.shared_pids()[0]
        runner_before, tmux_before = cpu_seconds(runner), cpu_seconds(server)
        t0 = now()
        job.release()
        wait_until(lambda: tail_has(usvc_log(sup, 0), DONE_MARK), 600, "the writer's log to be complete",
                   interval=0.005)
        wall = now() - t0
        runner_cpu = cpu_seconds(runner) - runner_before
        settle(server, quiet=0.3)
        tmux_cpu = cpu_seconds(server) - tmux_before
        seconds = job.seconds()
    finally:
        close_usvc(sup)
    mb = total_bytes / 1e6
    return [
        dict(measure="write time", subject="usvc", value=round(seconds, 3), unit="s",
             bytes=total_bytes, until_complete=round(wall, 3)),
        dict(measure="supervisor CPU per MB", subject="usvc", value=round((runner_cpu + tmux_cpu) * 1000 / mb, 2),
             unit="ms/MB", runner_s=round(runner_cpu, 2), tmux_s=round(tmux_cpu, 2)),
    ]


def median_row(rows):
    """The row with the median value, with every run's value beside it."""
    ordered = sorted(rows, key=lambda row: row["value"])
    return dict(ordered[(len(ordered) - 1) // 2], runs=[row["value"] for row in rows])


def run(usvc_path, jobs=100, lines=3000, width=120, write_bytes=200_000_000, rounds=3):
    """Every chatty-job row for usvc, plus the straight-to-file and bare
    terminal baselines. The write times are medians of `rounds` rounds, each
    round running the three one after another (so load on the machine falls
    on all of them alike)."""
    rows = []
    say(f"tmux memory: {jobs} jobs x {lines} lines of {width} characters")
    rows += tmux_memory(usvc_path, jobs, lines, width)
    files, ptys, usvcs, cpus = [], [], [], []
    for round_ in range(rounds):
        say(f"write time, round {round_ + 1} of {rounds}: {write_bytes / 1e6:.0f} MB of lines to a file, "
            "a bare terminal, usvc")
        files.append(write_to_file(write_bytes))
        ptys.append(write_to_bare_pty(write_bytes))
        time_row, cpu_row = write_under_usvc(usvc_path, write_bytes)
        usvcs.append(time_row)
        cpus.append(cpu_row)
    file_row, pty_row, usvc_row = median_row(files), median_row(ptys), median_row(usvcs)
    pty_row.update(vs_file=round(pty_row["value"] / file_row["value"], 2))
    ratio = usvc_row["value"] / file_row["value"]
    usvc_row.update(vs_file=round(ratio, 2), target=f"<= {WRITE_VS_FILE_TARGET}x file",
                    meets=ratio <= WRITE_VS_FILE_TARGET)
    return rows + [file_row, pty_row, usvc_row, median_row(cpus)]


def render(rows):
    out = []
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in ("measure", "subject", "value", "unit")}
        note = "  ".join(f"{k}={v}" for k, v in extra.items() if v is not None)
        out.append(f"{row['measure']:<24} {row['subject']:<6} {row['value']:>10} {row['unit']:<6} {note}")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usvc", required=True, help="the usvc binary (usvc-runner next to it)")
    parser.add_argument("--jobs", type=int, default=100, help="chatty jobs for the tmux memory row")
    parser.add_argument("--lines", type=int, default=3000, help="lines each chatty job prints")
    parser.add_argument("--width", type=int, default=120, help="characters per line")
    parser.add_argument("--write-mb", type=float, default=200, help="MB the writer job writes")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the write-time measurements (median)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        rows = run(args.usvc, args.jobs, args.lines, args.width, int(args.write_mb * 1e6), args.rounds)
    except BenchError as e:
        say(f"error: {e}")
        return 1
    print(render(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

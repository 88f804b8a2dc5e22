#!/usr/bin/env python3
"""Chatty jobs under usvc (issue 11): what printing costs.

Python 3 standard library only. Two measurements, each under a fresh
supervisor, every figure taken in the run that prints it; the peers run the
very same job programs (`chatty_job`, `WriterJob`: plain files) and log their
output the way each is meant to (runit: a ./log service running `svlogd -tt`;
supervisord: its stdout_logfile; s6: `s6-log t`):

  a. output memory  once JOBS jobs have each printed LINES lines of WIDTH
                    characters (then sleep), the USS of what holds their output:
                    usvc's tmux server (pane scrollback), runit's svlogd and
                    s6's s6-log processes (summed), supervisord's daemon; the
                    runners' median USS alongside.
  b. write time     one job writing BYTES of text lines as fast as it can: the
                    job's own time from first to last write, and the time until
                    its log holds every line, under usvc, each peer, straight
                    to a file, and to a bare pseudo-terminal read by a plain
                    loop (the floor for a job that has a terminal).
  c. CPU per MB     the CPU the supervisor side spent while (b) wrote (usvc:
                    runner + tmux server; runit: runsv + svlogd; s6:
                    s6-supervise + s6-log; supervisord: its daemon), per MB.

`run(usvc_path, smoke=False, peers=True) -> rows` is what bench/bench.py
calls; each row is a dict (measure, subject, value, unit, status: "ok" or why
the subject could not be measured). The verdicts on the targets are computed
from these rows by usvc_bench/targets.py.

Usage:
  python3 bench/chatty.py --usvc .build/release/usvc
  python3 bench/chatty.py --usvc .build/debug/usvc --jobs 10 --write-mb 20 --rounds 1 --json out.json
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

# The shared helpers are the harness's (usvc_bench/ sits beside this file, so
# the import works standalone and as a phase of bench.py alike, with one
# BenchError class either way).
from usvc_bench.common import (BenchError, NotAvailable, cpu_ns, cpu_seconds, descendants, now, uss_kib,
                               wait_until)
from usvc_bench.supervisors import RunitSvlogd, S6Log, Supervisord, Usvc, close_many

# The targets themselves are usvc_bench/targets.py's (TARGETS): the verdicts
# are computed there from these rows.
PEERS = [RunitSvlogd, Supervisord, S6Log]  # each logs the job's output to a file
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
    measured from a job already started; opened read-write, so the open does
    not block and /proc shows the job waiting on it), and after writing prints DONE_MARK
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
            f.write('#!/bin/sh\nread word <> "$4"\npython3 "$1" "$2" "$3"\n'
                    f"echo {DONE_MARK}\nexec sleep 100000\n")
        os.chmod(script, 0o755)
        self.bare = ["python3", program, str(total_bytes), self.times]
        self.argv = [script, program, str(total_bytes), self.times, self.go]

    def release(self, timeout=60):
        """Lets the started job write, once it waits on the FIFO (an error
        if it does not within `timeout`: the supervisor did not start it)."""
        def reader_waits():
            try:
                return os.open(self.go, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody has it open for reading yet
                return None
        fd = wait_until(reader_waits, timeout, "the writer job to wait for its go")
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)

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

OUTPUT_USS = "USS of what holds the output"
WRITE_TIME = "write time"
CPU_PER_MB = "supervisor CPU per MB"


def row(measure, subject, value, unit, status="ok", **extra):
    return dict(measure=measure, subject=subject, value=value, unit=unit, status=status, **extra)


def open_usvc(exe, group):
    sup = Usvc(exe)
    sup.group = group
    return sup


def close_sup(sup):
    close_many([sup])
    if sup.leftovers:
        raise BenchError("; ".join(sup.leftovers))


def usvc_log(sup, i):
    return os.path.join(sup.home, "logs", sup.name_of(i) + ".log")


def wait_printed(log_file, jobs, lines, what):
    for i in range(jobs):
        wait_until(lambda: tail_has(log_file(i), DONE_MARK), 300,
                   f"{what} job {i + 1} to log its {lines} lines")


def tmux_memory(usvc, jobs, lines, width):
    sup = open_usvc(usvc, "chatty")
    try:
        t0 = now()
        sup.start(jobs, chatty_job(sup.dir, lines, width))
        wait_printed(lambda i: usvc_log(sup, i), jobs, lines, "usvc")
        printed = now() - t0
        server = sup.shared_pids()[0]
        settle(server)
        runners = sorted(uss_kib(pid) for pid in sup.per_job_pids())
        tmux = uss_kib(server)
    finally:
        close_sup(sup)
    say(f"tmux USS {tmux} KiB at {jobs} jobs x {lines} lines ({printed:.1f} s to print)")
    return [
        row(OUTPUT_USS, "usvc", tmux, "KiB", jobs=jobs, lines=lines, width=width,
            detail="the tmux server (pane scrollback)"),
        row("runner USS (median)", "usvc", runners[len(runners) // 2], "KiB", jobs=jobs, lines=lines,
            width=width),
    ]


def open_peer(cls):
    """A peer supervisor, or the reason it cannot run (its rows say it)."""
    try:
        return cls(), None
    except NotAvailable as e:
        return None, str(e)


def peer_memory(cls, jobs, lines, width):
    """The same chatty jobs under a peer that logs them: the USS of its
    logging side (svlogd and s6-log processes summed, supervisord's daemon)."""
    sup, why = open_peer(cls)
    if sup is None:
        return [row(OUTPUT_USS, cls.name, None, "KiB", status=why, jobs=jobs, lines=lines, width=width)]
    try:
        sup.start(jobs, chatty_job(sup.dir, lines, width), wait=False)
        wait_printed(sup.log_file, jobs, lines, cls.name)
        loggers = sup.logger_pids()
        for pid in loggers:
            settle(pid, quiet=0.2)
        kib = sum(uss_kib(pid) for pid in loggers)
        names = sorted({comm(pid) for pid in loggers})
    except (BenchError, OSError) as e:
        return [row(OUTPUT_USS, cls.name, None, "KiB", status=f"error: {e}", jobs=jobs, lines=lines,
                    width=width)]
    finally:
        close_sup(sup)
    say(f"{cls.name}: {kib} KiB USS in {len(loggers)} logging processes")
    return [row(OUTPUT_USS, cls.name, kib, "KiB", jobs=jobs, lines=lines, width=width,
                detail=f"{len(loggers)} x {'/'.join(names)}")]


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def write_to_file(total_bytes):
    folder = tempfile.mkdtemp(prefix="uc.", dir="/tmp")
    try:
        job = WriterJob(folder, total_bytes)
        t0 = now()
        with open(os.path.join(folder, "out.log"), "wb") as f:
            subprocess.run(job.bare, stdout=f, check=True)
        wall = now() - t0
        return row(WRITE_TIME, "file", round(job.seconds(), 3), "s", bytes=total_bytes,
                   until_complete=round(wall, 3))
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
        return row(WRITE_TIME, "pty", round(job.seconds(), 3), "s", bytes=total_bytes,
                   until_complete=round(wall, 3), detail="bare pseudo-terminal, read by a plain loop")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
        shutil.rmtree(folder, ignore_errors=True)


def write_under(sup, log_file, total_bytes):
    """One WriterJob under a started supervisor `sup`: (the job's own write
    seconds, wall seconds until log_file holds its end, {process name: CPU
    seconds} of the supervisor side while it wrote)."""
    job = WriterJob(sup.dir, total_bytes)
    try:
        if isinstance(sup, Usvc):
            sup.start(1, job.argv)  # returns once the job has exec'd
        else:
            sup.start(1, job.argv, wait=False)
    except BaseException:
        close_sup(sup)
        raise

    def snapshot():
        """CPU seconds of the supervisor side: per-job supervisor, shared
        daemon, logger."""
        pids = set(sup.per_job_pids() + sup.shared_pids()
                   + (sup.logger_pids() if hasattr(sup, "logger_pids") else []))
        return {pid: cpu_ns(pid) / 1e9 for pid in pids}

    try:
        wait_until(lambda: writer_waits(sup, job), 60, f"the writer job to start under {sup.name}")
        before = snapshot()
        t0 = now()
        job.release()
        wait_until(lambda: tail_has(log_file(0), DONE_MARK), 600, "the writer's log to be complete",
                   interval=0.005)
        wall = now() - t0
        for pid in before:
            settle(pid, quiet=0.3)
        spent = {}
        for pid, cpu in before.items():
            spent[comm(pid)] = spent.get(comm(pid), 0.0) + cpu_ns(pid) / 1e9 - cpu
        return job.seconds(), wall, spent
    finally:
        close_sup(sup)


def writer_waits(sup, job):
    """Whether a process under sup has the writer's FIFO open, i.e. waits on
    `go` (looked up in /proc: opening the FIFO to probe would release it)."""
    for root in set(sup.job_roots()):
        for pid in [root] + descendants(root):
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == job.go:
                        return True
                except OSError:
                    pass
    return False


def write_rows(subject, total_bytes, measured):
    """The write-time and CPU rows of one supervisor from write_under's figures."""
    seconds, wall, spent = measured
    mb = total_bytes / 1e6
    detail = ", ".join(f"{name} {cpu:.2f} s" for name, cpu in sorted(spent.items()))
    return [row(WRITE_TIME, subject, round(seconds, 3), "s", bytes=total_bytes,
                until_complete=round(wall, 3)),
            row(CPU_PER_MB, subject, round(sum(spent.values()) * 1000 / mb, 2), "ms/MB",
                bytes=total_bytes, detail=detail)]


def write_under_usvc(usvc, total_bytes):
    sup = open_usvc(usvc, "writer")
    return write_rows("usvc", total_bytes, write_under(sup, lambda i: usvc_log(sup, i), total_bytes))


def write_under_peer(cls, total_bytes):
    sup, why = open_peer(cls)
    if sup is None:
        return [row(WRITE_TIME, cls.name, None, "s", status=why, bytes=total_bytes),
                row(CPU_PER_MB, cls.name, None, "ms/MB", status=why, bytes=total_bytes)]
    try:
        return write_rows(cls.name, total_bytes, write_under(sup, sup.log_file, total_bytes))
    except (BenchError, OSError) as e:
        return [row(WRITE_TIME, cls.name, None, "s", status=f"error: {e}", bytes=total_bytes),
                row(CPU_PER_MB, cls.name, None, "ms/MB", status=f"error: {e}", bytes=total_bytes)]


def median_row(rows):
    """The row with the median value, with every run's value beside it; the
    first row whose status is not ok when any is not (its reason stands)."""
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        return failed[0]
    ordered = sorted(rows, key=lambda r: r["value"])
    return dict(ordered[(len(ordered) - 1) // 2], runs=[r["value"] for r in rows])


SMOKE_SIZES = dict(jobs=3, lines=30, width=120, write_bytes=1_000_000, rounds=1)


def run(usvc_path, smoke=False, peers=True, jobs=100, lines=3000, width=120, write_bytes=200_000_000,
        rounds=3):
    """Every chatty-job row: usvc, the peers that log (runit + svlogd,
    supervisord, s6 + s6-log; a peer that cannot run gets a row saying why)
    and the straight-to-file and bare-terminal baselines. The write times are
    medians of `rounds` rounds, each round running every subject one after
    another (so load on the machine falls on all of them alike). `smoke`:
    tiny sizes (SMOKE_SIZES), the code paths only."""
    if smoke:
        jobs, lines, width, write_bytes, rounds = (SMOKE_SIZES[k] for k in
                                                   ("jobs", "lines", "width", "write_bytes", "rounds"))
    peer_classes = PEERS if peers else []
    rows = []
    say(f"tmux memory: {jobs} jobs x {lines} lines of {width} characters")
    rows += tmux_memory(usvc_path, jobs, lines, width)
    for cls in peer_classes:
        say(f"{cls.name}: {jobs} jobs x {lines} lines")
        rows += peer_memory(cls, jobs, lines, width)
    by_subject = {}
    for round_ in range(rounds):
        say(f"write time, round {round_ + 1} of {rounds}: {write_bytes / 1e6:g} MB of lines to a file, "
            "a bare terminal, usvc" + "".join(f", {c.name}" for c in peer_classes))
        measured = [[write_to_file(write_bytes)], [write_to_bare_pty(write_bytes)],
                    write_under_usvc(usvc_path, write_bytes)]
        measured += [write_under_peer(cls, write_bytes) for cls in peer_classes]
        for r in (r for rs in measured for r in rs):
            by_subject.setdefault((r["measure"], r["subject"]), []).append(r)
    file_time = median_row(by_subject[(WRITE_TIME, "file")])["value"]
    for (measure, subject), runs in by_subject.items():
        r = median_row(runs)
        if measure == WRITE_TIME and r["status"] == "ok" and subject != "file":
            r["vs_file"] = round(r["value"] / file_time, 2)
        rows.append(r)
    return rows


def render(rows):
    out = []
    for r in rows:
        extra = {k: v for k, v in r.items() if k not in ("measure", "subject", "value", "unit")}
        note = "  ".join(f"{k}={v}" for k, v in extra.items() if v is not None)
        out.append(f"{r['measure']:<30} {r['subject']:<20} {str(r['value']):>10} {r['unit']:<6} {note}")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usvc", required=True, help="the usvc binary (usvc-runner next to it)")
    parser.add_argument("--jobs", type=int, default=100, help="chatty jobs for the tmux memory row")
    parser.add_argument("--lines", type=int, default=3000, help="lines each chatty job prints")
    parser.add_argument("--width", type=int, default=120, help="characters per line")
    parser.add_argument("--write-mb", type=float, default=200, help="MB the writer job writes")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the write-time measurements (median)")
    parser.add_argument("--no-peers", action="store_true", help="usvc and the baselines only")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        rows = run(args.usvc, peers=not args.no_peers, jobs=args.jobs, lines=args.lines, width=args.width,
                   write_bytes=int(args.write_mb * 1e6), rounds=args.rounds)
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

#!/usr/bin/env python3
"""Time and peak memory of `usvc start` by the number of values its conf gets.

Issue 9, item 1: with one libgit2 call per value, writing a conf cost time and
memory quadratic in the number of values (1,000 arguments: 3.6 s, 2 GB).
usvc now writes each key with one call and refuses more than a cap of values
per key; this measures `start` at 10, 100 and the cap number of arguments,
and at the cap number of environment variables, each against the target of
256 MB and 2 s. The cap is read from usvc itself (its refusal of one value
more names it), so the rows follow the binary measured.

Each measurement: a fresh USVC_HOME whose tmux server is already running (a
first job started before), then one timed `usvc start` of `sh -c 'exec sleep
1000' x ARG…`; peak memory is the maximum resident set size of that usvc
process (wait4's rusage), under an address-space limit of 1 GiB and a
timeout, so a regression fails instead of eating the machine.

Usage:
  python3 bench/conf_writes.py --usvc .build/release/usvc
  (as a module: rows = conf_writes.run(usvc_path))
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

TARGET_SECONDS = 2.0
TARGET_BYTES = 256 * 1024 * 1024
ADDRESS_SPACE_LIMIT = 1 << 30
TIMEOUT_S = 60


class Home:
    """A temporary USVC_HOME with its tmux server running; removed on close."""

    def __init__(self, usvc):
        self.usvc = usvc
        # Short: the tmux socket path must fit in 107 bytes.
        self.root = tempfile.mkdtemp(prefix="ucw.", dir="/tmp")
        self.env = dict(self.base_env(), USVC_HOME=os.path.join(self.root, "h"))
        self.call(["start", "warm", "sleep", "1000"])

    @staticmethod
    def base_env():
        env = dict(os.environ, USVC_HOME="", NO_COLOR="1")
        for key in ("TMUX", "TMUX_PANE", "USVC_JOB", "USVC_GROUP"):
            env.pop(key, None)
        return env

    def call(self, args, env=None):
        result = subprocess.run([self.usvc] + args, env=env or self.env, capture_output=True, timeout=TIMEOUT_S)
        if result.returncode != 0:
            raise RuntimeError("usvc %s: %s" % (args[0], result.stderr.decode(errors="replace").strip()))
        return result

    def close(self):
        subprocess.run([self.usvc, "shutdown"], env=self.env, capture_output=True, timeout=TIMEOUT_S)
        subprocess.run(["tmux", "-S", os.path.join(self.env["USVC_HOME"], "tmux.sock"), "kill-server"],
                       capture_output=True, timeout=TIMEOUT_S)
        shutil.rmtree(self.root, ignore_errors=True)


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def start_and_measure(home, argv, env):
    """Runs `argv` (a usvc command) with its own wait4, so its own peak RSS is known."""
    read_end, write_end = os.pipe()
    began = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.dup2(write_end, 2)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            limited()
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(write_end)
    deadline = began + TIMEOUT_S
    errors = b""
    os.set_blocking(read_end, False)
    while True:
        waited, status, usage = os.wait4(pid, os.WNOHANG)
        try:
            chunk = os.read(read_end, 65536)
            errors += chunk
        except BlockingIOError:
            pass
        if waited == pid:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.wait4(pid, 0)
            os.close(read_end)
            raise RuntimeError("usvc start did not return within %d s" % TIMEOUT_S)
        time.sleep(0.002)
    seconds = time.monotonic() - began
    try:
        errors += os.read(read_end, 65536)
    except BlockingIOError:
        pass
    os.close(read_end)
    return seconds, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status), errors.decode(errors="replace")


def cap(usvc):
    """The values-per-key cap, as usvc's refusal of a start with too many names it."""
    home = Home(usvc)
    try:
        argv = [usvc, "start", "cw", "sh", "-c", "exec sleep 1000", "x"] + ["1"] * 100_001
        _, _, status, errors = start_and_measure(home, argv, home.env)
        found = re.search(r"at most (\d+) per key", errors)
        if status != 1 or not found:
            raise RuntimeError("100,001 arguments were not refused with a cap: %r" % errors.strip())
        return int(found.group(1))
    finally:
        home.close()


def measure(home, label, count, argv, env, listed_key, listed_count):
    seconds, peak, status, errors = start_and_measure(home, argv, env)
    if status != 0:
        raise RuntimeError("%s: usvc failed: %s" % (label, errors.strip()))
    # Every value is in the conf (one line each in `usvc conf`, values escaped).
    listed = home.call(["conf", "cw-1", listed_key]).stdout.count(b"\n")
    if listed != listed_count:
        raise RuntimeError("%s: the conf holds %d values of %s, not %d" % (label, listed, listed_key, listed_count))
    return {
        "what": label, "values": count, "seconds": round(seconds, 3),
        "peak_mib": round(peak / 1048576, 1), "values_in_conf": listed,
        "within_target": seconds <= TARGET_SECONDS and peak <= TARGET_BYTES,
        "verdict": verdict(seconds, peak),
    }


def verdict(seconds, peak):
    """"met", or by how much the time and/or the memory target is missed."""
    over = []
    if seconds > TARGET_SECONDS:
        over.append("%.3f s over %g s" % (seconds - TARGET_SECONDS, TARGET_SECONDS))
    if peak > TARGET_BYTES:
        over.append("%.1f MiB over %d MiB" % ((peak - TARGET_BYTES) / 1048576, TARGET_BYTES // 1048576))
    return "missed by " + " and ".join(over) if over else "met"


def start_row(label, count, usvc, arguments=(), extra_env=None):
    home = Home(usvc)
    try:
        env = dict(home.env, **(extra_env or {}))
        argv = [usvc, "start", "cw", "sh", "-c", "exec sleep 1000", "x"] + list(arguments)
        return measure(home, label, count, argv, env, "args" if arguments else "env", count)
    finally:
        home.close()


def load_row(limit, usvc):
    """`load` of one group whose every list key holds `limit` values."""
    home = Home(usvc)
    try:
        path = os.path.join(home.root, "many.conf")
        lines = ['[group "cw"]', "\tcount = 1", "\tcmd = /bin/sh", "\targs = -c", '\targs = "exec sleep 1000"']
        lines += ["\targs = a%d" % i for i in range(limit - 2)]
        lines += ["\tenv = CW_%05d=%d" % (i, i) for i in range(limit - 3)]  # + USVC_JOB, USVC_GROUP, USVC_HOME
        lines += ["\tafter = warm"] * limit
        for hook in ("pre", "post", "on-failure"):
            lines += ["\t%s = /bin/true" % hook] + ["\t%s = w%d" % (hook, i) for i in range(limit - 1)]
        with open(path, "w") as out:
            out.write("\n".join(lines) + "\n")
        return measure(home, "load: args, env, after and 3 hooks at %d each" % limit, 6 * limit,
                       [usvc, "load", path], home.env, "after", limit)
    finally:
        home.close()


def run(usvc_path, smoke=False):
    """The rows: `start` with 10, 100 and the cap number of arguments, with
    the cap number of environment variables, and `load` of a conf whose
    every list is at the cap. `smoke`: the cap (read from usvc) and `start`
    with 10 arguments only."""
    usvc = os.path.abspath(usvc_path)
    limit = cap(usvc)
    rows = []
    if smoke:
        rows.append(start_row("start with 10 arguments", 10, usvc, arguments=[str(i) for i in range(7)]))
        for r in rows:
            r["cap"] = limit
        return rows
    for n in (10, 100, limit):
        # `-c`, the script and `x` are 3 of the values of job.args.
        rows.append(start_row("start with %d arguments" % n, n, usvc, arguments=[str(i) for i in range(n - 3)]))
    # The job's environment: the caller's (but TMUX, TMUX_PANE) and USVC_JOB, USVC_GROUP, USVC_HOME.
    kept = (set(Home.base_env()) - {"TMUX", "TMUX_PANE"}) | {"USVC_JOB", "USVC_GROUP", "USVC_HOME"}
    extra = {"CW_%05d" % i: "value %d" % i for i in range(limit - len(kept))}
    rows.append(start_row("start with %d environment variables" % limit, limit, usvc, extra_env=extra))
    rows.append(load_row(limit, usvc))
    for r in rows:
        r["cap"] = limit
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--usvc", required=True, help="the usvc binary (release build for real figures)")
    parser.add_argument("--smoke", action="store_true", help="the cap and 10 arguments only")
    options = parser.parse_args()
    rows = run(options.usvc, smoke=options.smoke)
    print("%-50s %8s %10s %9s  %s" % ("what", "values", "seconds", "peak MiB", "within 256 MB and 2 s"))
    for r in rows:
        print("%-50s %8d %10.3f %9.1f  %s" % (r["what"], r["values"], r["seconds"], r["peak_mib"], r["verdict"]))
    return 0 if all(r["within_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

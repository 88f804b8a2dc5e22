"""The supervisors measured, usvc and its peers, behind one interface.

Each runs N copies of a job:
  stable_s              runs shorter than this are throttled by the supervisor
  start(n, argv, wait)  n jobs running argv; with wait, returns once all
                        have exec'd
  job_roots()           per job, the process under which its program runs
  job_pid(i)            current main pid of job i
  per_job_pids()        one supervisor process per job ([] if none)
  shared_pids()         daemons shared by all jobs ([] if none)
  close()               tear down, verify nothing is left
"""

import os
import shlex
import shutil
import signal
import subprocess
import tempfile

from .build import usvc_version_line
from .common import (BenchError, NotAvailable, Tracked, children, descendants, find_program,
                     proc_stat, run, wait_until)

class Supervisor:
    name = "?"
    stable_s = 0.0
    binaries = ()
    per_job_label = "—"  # the process that exists once per job
    shared_label = "—"   # the process shared by all jobs

    def __init__(self):
        for b in self.binaries:
            if shutil.which(b) is None:
                raise NotAvailable(f"{b} not installed")
        self.dir = tempfile.mkdtemp(prefix="ub", dir="/tmp")
        self.argv = None
        self.n = 0
        self.popens = []
        self.closed = False
        self.leftovers = []
        OPEN.append(self)

    def job_pid(self, i):
        pids = find_program(self.job_roots()[i], self.argv)
        if len(pids) != 1:
            raise BenchError(f"{self.name}: job {i} runs {len(pids)} copies")
        return pids[0]

    def wait_jobs_running(self, timeout=60):
        def all_up():
            return all(find_program(r, self.argv) for r in self.job_roots())
        wait_until(lambda: len(self.job_roots()) == self.n and all_up(), timeout,
                   f"{self.n} {self.name} jobs to run")

    def spawn(self, argv, **kw):
        # Own session: no controlling terminal, and not in our process group
        # (a Ctrl-C of the harness must not kill peers before the teardown).
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, **kw)
        self.popens.append(p)
        return p

    def stop(self):
        raise NotImplementedError

    def close(self):
        close_many([self])

    def begin_close(self):
        """Snapshot every process of this supervisor, then ask it to stop.
        Split from end_close so several supervisors wind down in parallel
        (supervisord takes ~2 s, runsv ~1 s)."""
        if self.closed:
            return
        self.closed = True
        self.tracked = Tracked()
        self.tracked.add_tree([p.pid for p in self.popens] + self.shared_pids_safe()
                              + self.per_job_pids_safe())
        self.grace = 10.0
        try:
            self.stop()
        except Exception as e:  # still verify and clean up in end_close
            self.leftovers.append(f"teardown failed: {e}")
            self.grace = 0.5  # nothing is winding down: kill without waiting

    def end_close(self):
        """Wait for everything to be gone; kill and report what is not."""
        if self not in OPEN:
            return
        OPEN.remove(self)
        for p in self.popens:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        left = self.tracked.reap_or_kill(self.grace)
        if left:
            self.leftovers.append(f"{len(left)} processes left after teardown (killed): "
                                  + "; ".join(left[:4]) + ("; …" if len(left) > 4 else ""))
        shutil.rmtree(self.dir, ignore_errors=True)

    def shared_pids_safe(self):
        try:
            return self.shared_pids()
        except Exception:
            return []

    def per_job_pids_safe(self):
        try:
            return self.per_job_pids()
        except Exception:
            return []

    def shared_pids(self):
        return []

    def version(self):
        return "?"


def deb_version(pkg):
    cp = run(["dpkg-query", "-W", "-f=${Version}", pkg], check=False)
    return cp.stdout.decode().strip() or "?"


class ProcessPerJob(Supervisor):
    """One process started by the harness per job (runsv, s6-supervise, a
    bash loop): it is both the job's root and its supervisor."""

    def job_roots(self):
        return [p.pid for p in self.popens]

    def per_job_pids(self):
        return self.job_roots()


class ServiceDirSupervisor(ProcessPerJob):
    """runsv / s6-supervise: one supervisor process per service directory."""
    program = "?"

    def start(self, n, argv, wait=True):
        self.argv, self.n = argv, n
        for i in range(n):
            svc = os.path.join(self.dir, f"s{i + 1}")
            os.mkdir(svc)
            run_file = os.path.join(svc, "run")
            with open(run_file, "w") as f:
                f.write("#!/bin/sh\n" + self.run_script(argv) + "\n")
            os.chmod(run_file, 0o755)
            self.add_logger(svc)
            self.spawn([self.program, svc])
        if wait:
            self.wait_jobs_running()

    def run_script(self, argv):
        """The body of the service's ./run (after the #! line)."""
        return "exec " + shlex.join(argv)

    def add_logger(self, svc):
        """Nothing: the job's output goes nowhere (a logging variant adds its logger)."""

    def log_file(self, i):
        """Where job i's output lands (the logger's current file)."""
        return os.path.join(self.dir, f"s{i + 1}", "main", "current")

    def logger_pids(self):
        """The logging processes (one per job), [] without a logger."""
        roots = self.job_roots()
        jobs = {p for r in roots for p in find_program(r, self.argv)}
        return [p for r in roots for p in descendants(r)
                if p not in jobs and self.is_logger(p)]

    def is_logger(self, pid):
        return False

    def stop(self):
        # TERM = "take the service down, then exit" for both runsv and
        # s6-supervise.
        for p in self.popens:
            p.send_signal(signal.SIGTERM)


class Runit(ServiceDirSupervisor):
    name = "runit (runsv)"
    program = per_job_label = "runsv"
    binaries = ("runsv", "sv")
    stable_s = 1.0  # runsv sleeps 1 s before restarting a run shorter than 1 s

    def version(self):
        return "runit " + deb_version("runit")

    def status_argv(self, jobs=None):
        """`sv status` of the first `jobs` services (all by default)."""
        return ["sv", "status"] + [os.path.join(self.dir, f"s{i + 1}")
                                   for i in range(self.n if jobs is None else jobs)]


def comm_of(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


class RunitSvlogd(Runit):
    """runsv with a log service: ./log/run is `svlogd -tt main`, runsv pipes
    the job's output into it (runit's own way of logging a service)."""
    name = "runit + svlogd -tt"
    binaries = ("runsv", "sv", "svlogd")

    def add_logger(self, svc):
        os.makedirs(os.path.join(svc, "log", "main"))
        log_run = os.path.join(svc, "log", "run")
        with open(log_run, "w") as f:
            f.write("#!/bin/sh\nexec svlogd -tt main\n")
        os.chmod(log_run, 0o755)

    def log_file(self, i):
        return os.path.join(self.dir, f"s{i + 1}", "log", "main", "current")

    def is_logger(self, pid):
        return comm_of(pid) == "svlogd"


class S6(ServiceDirSupervisor):
    name = "s6 (s6-supervise)"
    program = per_job_label = "s6-supervise"
    binaries = ("s6-supervise",)
    stable_s = 1.0  # s6-supervise waits 1 s between two spawns of ./run

    def version(self):
        return "s6 " + deb_version("s6")


class S6Log(S6):
    """s6-supervise whose ./run starts `s6-log t main` on a FIFO and execs the
    job with its output into it: the job stays the service's pid (a down
    stops it) and its logger ends when the job does. s6-svscan would set up
    the same pipe between a service and its ./log; s6-supervise alone does not."""
    name = "s6 + s6-log"
    binaries = ("s6-supervise", "s6-log")

    def run_script(self, argv):
        return ('[ -p log.fifo ] || mkfifo log.fifo\n'
                's6-log t ./main < log.fifo &\n'
                'exec ' + shlex.join(argv) + ' > log.fifo')

    def add_logger(self, svc):
        os.mkdir(os.path.join(svc, "main"))

    def is_logger(self, pid):
        return comm_of(pid) == "s6-log"


class Supervisord(Supervisor):
    name = "supervisord"
    shared_label = "supervisord"
    binaries = ("supervisord", "supervisorctl")
    stable_s = 0.0  # startsecs=0: every run counts as a successful start

    def start(self, n, argv, wait=True):
        self.argv, self.n = argv, n
        d = self.dir
        self.conf = os.path.join(d, "supervisord.conf")
        lines = [
            "[supervisord]", "nodaemon=true", f"logfile={d}/supervisord.log",
            f"pidfile={d}/supervisord.pid", f"childlogdir={d}", "loglevel=warn",
            "[unix_http_server]", f"file={d}/s.sock",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]", f"serverurl=unix://{d}/s.sock",
        ]
        for i in range(n):
            lines += [f"[program:j{i + 1}]", "command=" + shlex.join(argv),
                      f"startsecs={self.stable_s:g}", "autorestart=true",
                      f"stdout_logfile={self.log_file(i)}"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.daemon = self.spawn(["supervisord", "-c", self.conf])
        if wait:
            self.wait_jobs_running()

    def log_file(self, i):
        """Where program j{i+1}'s output lands (supervisord writes it itself,
        rotated at its default size)."""
        return os.path.join(self.dir, f"j{i + 1}.log")

    def logger_pids(self):
        return self.shared_pids()

    def job_roots(self):
        # Every program is a direct child of the one daemon.
        return [self.daemon.pid] * self.n

    def wait_jobs_running(self, timeout=60):
        wait_until(lambda: len(find_program(self.daemon.pid, self.argv)) == self.n,
                   timeout, f"{self.n} supervisord programs to run")

    def job_pid(self, i):
        # Programs are not told apart (all are children of the daemon): only
        # the one-job case needs job_pid.
        pids = find_program(self.daemon.pid, self.argv)
        if self.n != 1 or len(pids) != 1:
            raise BenchError(f"supervisord runs {len(pids)} programs, expected 1")
        return pids[0]

    def per_job_pids(self):
        return []

    def shared_pids(self):
        return [self.daemon.pid]

    def stop(self):
        self.daemon.send_signal(signal.SIGTERM)  # stops every program, exits

    def status_argv(self):
        return ["supervisorctl", "-c", self.conf, "status"]

    def version(self):
        cp = run(["supervisord", "--version"], check=False)
        return "supervisor " + cp.stdout.decode().strip()


class TmuxLoop(Supervisor):
    """A bare tmux pane per job running `sh -c 'while :; do PROG; done'` on a
    private server: the naive approach usvc replaces."""
    name = "tmux + sh loop"
    per_job_label, shared_label = "sh (pane)", "tmux server"
    binaries = ("tmux",)
    throttle_s = 0  # crash-loop variant sleeps between runs, like runit/s6

    def tmux(self, *args, timeout=60):
        return run(["tmux", "-S", self.sock, "-f", "/dev/null", *args], timeout=timeout)

    def start(self, n, argv, wait=True):
        self.argv, self.n = argv, n
        self.sock = os.path.join(self.dir, "t.sock")
        body = shlex.join(argv) + (f"; sleep {self.throttle_s}" if self.throttle_s else "")
        loop = f"while :; do {body}; done"
        # Two or more words after `--`: tmux execs them without another shell.
        self.tmux("new-session", "-d", "-s", "b", "-x", "80", "-y", "24",
                  "--", "sh", "-c", loop)
        for chunk in range(1, n, 50):  # chain windows, 50 per tmux call
            args = []
            for _ in range(chunk, min(n, chunk + 50)):
                args += ["new-window", "-d", "-t", "b", "--", "sh", "-c", loop, ";"]
            self.tmux(*args[:-1])
        self.server = int(self.tmux("display-message", "-p", "#{pid}").stdout)
        if wait:
            self.wait_jobs_running()

    def job_roots(self):
        out = self.tmux("list-panes", "-a", "-F", "#{pane_pid}").stdout.split()
        return [int(x) for x in out]

    def per_job_pids(self):
        return self.job_roots()

    def shared_pids(self):
        return [self.server]

    def stop(self):
        self.tmux("kill-server")  # panes get SIGHUP

    def version(self):
        return run(["tmux", "-V"]).stdout.decode().strip()


class BashLoop(ProcessPerJob):
    """`bash -c 'while :; do PROG; done'`: the shell-loop baseline."""
    name = "bash while loop"
    per_job_label = "bash"
    binaries = ("bash",)

    def start(self, n, argv, wait=True):
        self.argv, self.n = argv, n
        for _ in range(n):
            self.spawn(["bash", "-c", f"while :; do {shlex.join(argv)}; done"])
        if wait:
            self.wait_jobs_running()

    def stop(self):
        for p in self.popens:
            os.killpg(p.pid, signal.SIGTERM)

    def version(self):
        return run(["bash", "-c", "echo $BASH_VERSION"]).stdout.decode().strip()


class Usvc(Supervisor):
    """usvc through its CLI only, in a fresh private USVC_HOME."""
    name = "usvc"
    per_job_label, shared_label = "usvc runner", "tmux server + other panes"
    group = "bench"
    stable_s = 0.0  # the respawn phase sets the job's stable-after to this

    def __init__(self, exe):
        if not os.access(exe, os.X_OK):
            raise NotAvailable(f"not built ({exe} missing)")
        self.exe = exe
        super().__init__()
        self.home = self.dir  # short path under /tmp: tmux.sock fits sun_path
        self.env = dict(os.environ, USVC_HOME=self.home, NO_COLOR="1")

    def cli(self, *args, timeout=120):
        return run([self.exe, *args], env=self.env, timeout=timeout)

    def cli_argv(self, *args):
        return [self.exe, *args]

    def start(self, n, argv, wait=True, chunk=100):
        """Grow the job count to n with `start -n` calls of at most `chunk`
        jobs (one 1000-job call would hold a single client for long).
        `usvc start` itself returns once each program has exec'd."""
        self.argv = argv
        while self.n < n:
            k = min(chunk, n - self.n)
            out = self.cli("start", "-n", str(k), self.group, *argv, timeout=300)
            started = out.stdout.decode().count("started ")
            if started != k:
                raise BenchError(f"usvc start -n {k} printed {started} 'started' lines")
            self.n += k

    def name_of(self, i):
        return f"{self.group}-{i + 1}"

    def state(self, name):
        """run/NAME.state as key=value pairs (written by the job's runner)."""
        out = {}
        with open(os.path.join(self.home, "run", name + ".state")) as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep:
                    out[k] = v
        return out

    def runner_of(self, name):
        try:
            return int(self.state(name)["runner"])
        except (OSError, KeyError, ValueError) as e:
            raise BenchError(f"no runner=PID in run/{name}.state ({e})")

    def job_roots(self):
        return [self.runner_of(self.name_of(i)) for i in range(self.n)]

    def job_pid(self, i):
        out = self.cli("pidof", self.name_of(i)).stdout.split()
        if len(out) != 1:
            raise BenchError(f"usvc pidof {self.name_of(i)} printed {out!r}")
        return int(out[0])

    def per_job_pids(self):
        run_dir = os.path.join(self.home, "run")
        names = sorted(f[:-6] for f in os.listdir(run_dir) if f.endswith(".state"))
        return [self.runner_of(n) for n in names]

    def shared_pids(self):
        """The tmux server (the runners' parent: each runner is a pane pid)
        and any other pane of usvc's session that is not a job's runner
        (a console window, say): usvc's fixed cost, shared by all jobs."""
        runners = self.per_job_pids_safe()
        if not runners:
            return []
        st = proc_stat(runners[0])
        if st is None:
            return []
        server = st[1]
        return [server] + [p for p in children(server) if p not in runners]

    def stop(self):
        self.cli("shutdown", timeout=300)

    def version(self):
        return usvc_version_line(self.exe)


OPEN = []  # supervisors not yet closed; closed on any exit path


def close_many(sups):
    for sup in sups:
        sup.begin_close()
    for sup in sups:
        sup.end_close()


def close_all():
    close_many(list(reversed(OPEN)))


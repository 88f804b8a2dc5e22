"""The run: results, errors and the bookkeeping the phases share, and the
list of phases run in order (PHASES).

A phase is a function taking the Run. It stores plain data under
r.results[section] (for the JSON and the report), reports problems with
r.error(), opens supervisors with r.open()/r.start_side_by_side() and closes
them with r.finish(). Extra measurements written as a module with
`run(usvc_path) -> rows` are registered with one ModulePhase line in PHASES;
their rows are printed as a table of their own.
"""

import importlib.util
import inspect
import os
import sys
import traceback

from .common import BENCH, JOB_ARGV, BenchError, NotAvailable, now
from .crashloop import phase_crashloop
from .measure import CLI_WARMUP_RUNS
from .peers import phase_peers_memory_cli
from .probes import phase_probes_memory
from .respawn import phase_respawn
from .scale import phase_sv_scale, phase_usvc_scale
from .start import phase_start
from .supervisors import Usvc, close_many


class Run:
    """Results, errors and the bookkeeping shared by the phases."""

    def __init__(self, args, cfg):
        self.args, self.cfg = args, cfg
        self.results = dict(respawn={}, memory={}, cli={}, start={}, crashloop={})
        self.errors = []
        self.versions = {}
        # The parameters of the method the report quotes, recorded with the figures.
        self.method = dict(job_argv=JOB_ARGV, cli=dict(warmup_runs=CLI_WARMUP_RUNS))
        self.t0 = now()

    def error(self, where, msg):
        self.errors.append(f"{where}: {msg}")
        print(f"bench: ERROR {where}: {msg}", file=sys.stderr, flush=True)

    def log(self, msg):
        print(f"bench: [{now() - self.t0:5.1f}s] {msg}", file=sys.stderr, flush=True)

    def skipped(self, cls):
        return self.args.skip_usvc if issubclass(cls, Usvc) else self.args.skip_peers

    def open(self, cls):
        """A new supervisor of class cls, or None when skipped / unavailable
        (then self.versions says why, for its rows)."""
        if self.skipped(cls):
            self.versions.setdefault(cls.name, "skipped")
            return None
        try:
            sup = cls(self.args.usvc) if issubclass(cls, Usvc) else cls()
        except NotAvailable as e:
            self.versions.setdefault(cls.name, str(e))
            return None
        if sup.name not in self.versions:
            self.versions[sup.name] = sup.version()
        return sup

    def status_of(self, cls):
        return self.versions.get(cls.name, "not available")

    def start_side_by_side(self, section, classes, n, argv_for, wait=True):
        """Open and start several supervisors at once (their start-up waits
        overlap). Unavailable or failing ones get a status row in
        results[section]; returns the ones running."""
        sups = []
        for cls in classes:
            sup = self.open(cls)
            if sup is None:
                self.results[section][cls.name] = dict(status=self.status_of(cls))
                continue
            try:
                sup.start(n, argv_for(sup), wait=False)
                sups.append(sup)
            except (BenchError, OSError) as e:
                self.fail(section, sup, e)
        if wait:
            for sup in list(sups):
                try:
                    sup.wait_jobs_running()
                except (BenchError, OSError) as e:
                    sups.remove(sup)
                    self.fail(section, sup, e)
        return sups

    def record(self, section, rows):
        """Rows by supervisor name into results[section]; each row whose
        status is not ok is also an error of the run."""
        for name, v in rows.items():
            if v["status"] != "ok":
                self.error(f"{section}/{name}", v["status"])
        self.results[section].update(rows)

    def fail(self, section, sup, e):
        self.error(f"{section}/{sup.name}", e)
        self.results[section][sup.name] = dict(status=f"error: {e}")
        self.finish([sup])

    def finish(self, sups):
        close_many(sups)
        for sup in sups:
            for msg in sup.leftovers:
                self.error(sup.name, msg)


class ModulePhase:
    """A phase kept in a module of bench/ of its own, exposing
    `run(usvc_path) -> rows` (rows: a list of dicts, one per table row, the same
    keys in each; `run(usvc_path, smoke=..., peers=...)` is given the run's
    mode and whether peers are measured, for each it takes). Its rows land in results["extra"][section] and in a table of
    the report titled `title`. An exception is an error of the run."""

    def __init__(self, section, title, path=None):
        self.section, self.title = section, title
        self.path = path or os.path.join(BENCH, section + ".py")
        self.__name__ = f"phase {section}"

    def __call__(self, r):
        extra = r.results.setdefault("extra", {})
        if r.args.skip_usvc:
            extra[self.section] = dict(title=self.title, status="skipped")
            return
        r.log(f"{self.section}: {os.path.relpath(self.path, BENCH)}")
        spec = importlib.util.spec_from_file_location("bench_" + self.section, self.path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        given = dict(smoke=r.args.smoke, peers=not getattr(r.args, "skip_peers", False))
        takes = inspect.signature(module.run).parameters
        kwargs = {k: v for k, v in given.items() if k in takes}
        try:
            rows = list(module.run(r.args.usvc, **kwargs))
        except Exception as e:
            extra[self.section] = dict(title=self.title, status=f"error: {e}")
            raise
        extra[self.section] = dict(title=self.title, status="ok", rows=rows)


# The phases, in the order they run. A new one is one line here.
PHASES = [
    phase_respawn,
    phase_peers_memory_cli,
    phase_usvc_scale,
    phase_probes_memory,
    phase_sv_scale,
    phase_start,
    phase_crashloop,
    ModulePhase("board", "Board: CPU of usvc top and bytes per refresh"),  # bench/board.py
    ModulePhase("fleet", "Many hosts: usvc status --hosts vs parallel-ssh, pdsh -R ssh, clush, an ssh loop (same ssh config, without and with control masters)"),  # bench/fleet.py
    ModulePhase("conf_writes", "Conf writes: time and peak memory by value count"),  # bench/conf_writes.py
    ModulePhase("chatty", "Chatty jobs: tmux memory, write time and supervisor CPU per MB"),  # bench/chatty.py
    ModulePhase("health", "Health: port open to dependent exec'd, CPU of runners probing tcp: health"),  # bench/health.py
]


def phase_name(phase):
    """What --only calls a phase: a module phase's section, a function's name
    without `phase_` (respawn, peers_memory_cli, usvc_scale, ...)."""
    return getattr(phase, "section", None) or phase.__name__.removeprefix("phase_")


def select_phases(only, phases=PHASES):
    """The phases named in `only` (comma-separated, see phase_name), in run
    order; every phase when `only` is empty. An unknown name is a ValueError."""
    if not only:
        return list(phases)
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    known = {phase_name(p): p for p in phases}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"unknown phase {', '.join(unknown)} (phases: {', '.join(known)})")
    return [p for p in phases if phase_name(p) in wanted]


def run_phases(r, phases=PHASES):
    for phase in phases:
        try:
            phase(r)
        except Exception as e:  # a harness bug: report it, run the rest
            r.error(phase.__name__, f"{type(e).__name__}: {e}\n" + traceback.format_exc())

"""The Markdown report of one run, from the run's document (the JSON).

Every figure printed comes from that document: measurements, and the method
parameters the run recorded (doc["method"]); a parameter a document lacks is
left out of the prose, not filled in from today's code. Verdicts are computed
(targets.py). The digits typed in this module's strings are section numbers,
`p95` (a column's statistic), number formats and names (s6, libgit2); the
targets' limits are goals kept as data in targets.TARGETS.
"""

import os
import platform
import shlex

from .targets import TMUX_LOOP, USVC, gap_verdict, is_missed, respawn_gaps


def machine_info():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((l.split(":", 1)[1].strip() for l in f
                                if l.startswith("model name")), platform.processor())
    except OSError:
        info["cpu"] = platform.processor() or "?"
    info["cores"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        info["memory"] = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        info["memory"] = "?"
    info["kernel"] = platform.release()
    try:
        with open("/etc/os-release") as f:
            osr = dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l)
        info["os"] = osr.get("PRETTY_NAME", "?").strip('"')
    except OSError:
        info["os"] = "?"
    info["python"] = platform.python_version()
    return info


def fmt(v, spec=".2f"):
    return "—" if v is None else format(v, spec)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def not_ok_row(name, v, width):
    return [name, v.get("status", "?")] + ["—"] * (width - 2)


def duration(seconds):
    """A method parameter in seconds, in the unit that reads best."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:g} ms"
    return f"{seconds * 1e6:g} µs"


def build_section(doc):
    """Which usvc was measured: its own --version, and git's view of the
    checkout when the run started."""
    b = doc.get("build")
    if not b:
        named = doc.get("versions", {}).get(USVC, "")
        if not named.startswith("usvc "):  # skipped or not built: its rows say so
            return [f"usvc was not measured in this run ({named or 'not available'})."]
        return ["This run did not record the binary's own `usvc --version`, so it does not say "
                "which build it measured"
                + (f"; its version column's `{named}` is git's HEAD when the run started, "
                   "which need not be what was built" if named.startswith("usvc git ") else "")
                + "."]
    out = [f"`{b['exe']} --version`: `{b['version_line']}`."]
    if not b.get("commit"):
        out.append("The binary does not know its commit (built outside a git checkout, or "
                   "before `--version`)" + (f"; the checkout was at {b['git_head']}"
                                             f"{' (dirty)' if b['git_dirty'] else ''}."
                                             if b.get("git_head") else "."))
        return [" ".join(out)]
    tree = "a dirty tree (uncommitted changes or untracked files)" if b["dirty"] else "a clean tree"
    out.append(f"The usvc binary measured was built from commit {b['commit']}, {tree}; the "
               "runners it starts are the usvc-runner beside it, from the same build.")
    if b.get("git_head") is None:
        out.append("git could not be asked about the checkout.")
    elif b["git_head"] == b["commit"] and b["git_dirty"] == b["dirty"]:
        out.append(f"git agrees: the checkout was at that commit, "
                   f"{'dirty' if b['git_dirty'] else 'clean'}, when the run started"
                   + (" (whether its uncommitted changes are the ones built, git cannot tell)."
                      if b["git_dirty"] else "."))
    else:
        out.append(f"**git disagrees**: the checkout was at {b['git_head']}"
                   f"{', dirty' if b['git_dirty'] else ', clean'} when the run started, so the "
                   "binaries are not the tree's code (rebuild before measuring).")
    return [" ".join(out)]


def job_text(doc):
    argv = doc.get("method", {}).get("job_argv")
    return f"`{shlex.join(argv)}`" if argv else "the long-running job"


def respawn_method_line(doc):
    res, job = doc["results"]["respawn"], job_text(doc)
    program = os.path.basename(doc["method"]["job_argv"][0]) if "job_argv" in doc.get("method", {}) else None
    exec_text = f"`{program}`" if program else "its program"
    methods = sorted({v["method"] for v in res.values() if v.get("status") == "ok"})
    if not methods:
        return f"Kill of {job} to the replacement having exec'd {exec_text}."
    how = {"kernel tracepoints": "timed by the kernel (tracefs: `signal_generate` of the SIGKILL, "
                                 "`sched_process_exec` of the new pid)",
           "proc polling": "timed by a poller that sees the exec in `/proc/PID/cmdline` (no "
                           "tracefs here, or not root)"}
    return (f"Kill of {job} to the replacement having exec'd {exec_text}, "
            + "; ".join(how.get(m, m) for m in methods) + ".")


def how_to_read(doc):
    m, cores = doc.get("method", {}), doc["machine"].get("cores")
    rsp, cli, crash = m.get("respawn"), m.get("cli"), m.get("crashloop")
    respawn = ["- **Respawn**: each job ran longer than its supervisor's quick-death period "
               "before every kill, so the figure is the supervisor's own reaction time"]
    if rsp:
        periods = ", ".join(f"{name} {duration(s)}" for name, s in rsp["quick_death_s"].items())
        respawn[0] += (f" ({periods}: usvc's is the job's `stable-after`, supervisord's its "
                       f"`startsecs`; plus {duration(rsp['stable_margin_s'])} of margin)")
    respawn.append(". As root, the kill and the exec are timed by the kernel (a private tracefs "
                   "instance, clock `mono`: `signal_generate` of the SIGKILL, `sched_process_exec` "
                   "of the new pid, whose program is the job's); a poller that scans `/proc`")
    respawn.append(f" every {duration(rsp['slow_poll_s'])}" if rsp else "")
    respawn.append(" only finds the new pid. Without tracefs the poller's own clock is used"
                   + (f", napping {duration(rsp['fine_nap_s'])} between scans for "
                      f"{duration(rsp['busy_poll_s'])} after the kill" if rsp else "")
                   + ": that poller competes with what it measures for the machine's "
                   + (f"{cores} cores" if cores else "cores")
                   + ", so its figures include that interference. The usvc-vs-peer column calls "
                   "a gap only when the bootstrap interval of the difference of medians (both "
                   "rows' kills resampled) lies on one side of zero. s6-supervise waits between "
                   "two spawns of ./run and supervisord acts on exits from its main loop's "
                   "periodic tick, by design: their rows show that floor.")
    warmups = cli.get("warmup_runs") if cli else None
    lines = [
        "".join(respawn),
        "- **Memory**: USS = Private_Clean + Private_Dirty from `/proc/PID/smaps_rollup`, "
        "i.e. what each extra copy really costs; shared libraries mapped by several "
        "copies are not counted. \"per job\" adds the shared daemon's USS divided by "
        "the number of jobs (usvc and the tmux loop: the tmux server; supervisord: its "
        "daemon).",
        "- **CLI latency**: wall time of the whole client process, fork and exec "
        "included, median" + (f" after {warmups} discarded warm-up run{'s' if warmups > 1 else ''}"
                              if warmups else "")
        + "; all jobs running.",
        "- **Start throughput**: `start -n` on a fresh USVC_HOME includes starting "
        "usvc's tmux server; each `started` line is printed only once that job's "
        "program has exec'd.",
        "- **Crash loop**: user+system CPU of the supervisor's own processes (usvc: "
        "runners + tmux server + its other panes; tmux loop: tmux server + sh), not "
        "of the crashing program, as utime+stime from `/proc/PID/stat` ("
        + (f"ticks of {crash['stat_tick_ms']:g} ms" if crash else "clock ticks")
        + ") and, to the ns, from `/proc/PID/task/*/schedstat` (used for the %); all "
        "supervisors run side by side during the window. The tmux loop sleeps"
        + (f" {duration(crash['tmux_loop_sleep_s'])}" if crash else "")
        + " between runs (unthrottled it spins a core). usvc backs off exponentially between "
        "quick deaths, which its starts column shows.",
        "- Machines are noisy: compare rows of the same run, not across runs.",
    ]
    extra = doc["results"].get("extra", {})
    if "chatty" in extra:
        lines.insert(-1,
            "- **Chatty jobs**: every supervisor runs the same job files and logs their output its "
            "own way (usvc: its log and the pane; runit: a `./log` service running `svlogd -tt`; "
            "supervisord: its `stdout_logfile`; s6: `s6-log t`, fed through a FIFO by the run "
            "script as s6-svscan would through a pipe). Memory: the USS of what holds the output "
            "once every job has logged its last line (summed over the loggers of all jobs). Write "
            "time: the job's own time from its first to its last write (`until_complete`: until "
            "the log holds the end), median over the rounds, each round running every subject one "
            "after another; `vs_file` divides by the straight-to-file row. CPU per MB: the "
            "scheduler's CPU time of the supervisor side (per-job supervisor, shared daemon, "
            "loggers) while the job wrote. A row whose status is not ok could not be measured, "
            "and says why.")
    if "conf_writes" in extra:
        lines.insert(-1,
            "- **Conf writes**: one timed `usvc start` (or `load`) in a fresh USVC_HOME whose "
            "tmux server already runs; peak memory is that process's maximum resident set "
            "(wait4), under an address-space limit; the cap is the one usvc's own refusal names.")
    return lines


def extra_sections(doc, number):
    """Tables of the phases registered with harness.ModulePhase."""
    out = []
    for section, v in doc["results"].get("extra", {}).items():
        number += 1
        out += [f"## {number}. {v.get('title', section)}", ""]
        rows = v.get("rows") or []
        if v.get("status") != "ok" or not rows:
            out += [f"{section}: {v.get('status', '?') if v.get('status') != 'ok' else 'no rows'}", ""]
            continue
        header = list(dict.fromkeys(k for row in rows for k in row))
        out += [table(header, [[row.get(k, "—") for k in header] for row in rows]), ""]
    return out


def probes_lines(v):
    """Issue 13's row: the runner's USS with health checks, next to without (probes.py)."""
    if not v:
        return []
    out = ["Health checks: a usvc runner whose job has an http:// readiness check and a tcp: health "
           "check, next to a plain one (same home, same job).", ""]
    if v.get("status") != "ok":
        return out + [f"usvc with checks: {v.get('status', '?')}", ""]
    rows = [["plain", v["jobs"], fmt(v["plain"]["median_kib"], ".0f"), fmt(v["plain"]["max_kib"], ".0f")],
            [f"`ready = {v['ready']}`, `health = {v['health']}`, health-interval {v['health_interval_s']:g} s",
             v["jobs"], fmt(v["probed"]["median_kib"], ".0f"), fmt(v["probed"]["max_kib"], ".0f")]]
    return out + [table(["usvc runner", "jobs", "its USS (median)", "its USS (max)"], rows), "",
                  f"The port answered {v['readiness_gets']} readiness requests and took "
                  f"{v['health_connections']} health connections before the runners were measured.", ""]


def render_markdown(doc):
    res, cfg, m = doc["results"], doc["config"], doc["machine"]
    out = [
        "# usvc benchmarks", "",
        f"Generated by `bench/bench.py` ({doc['mode']} run) on {doc['date']}, "
        f"in {doc['duration_s']:.0f} s. Every figure below comes from this one run "
        "on this one machine; peers were started by hand in temporary directories.", "",
        "## Code measured", "",
    ] + build_section(doc) + [
        "",
        "## Machine", "",
        table(["", ""], [["CPU", f"{m['cpu']} ({m['cores']} cores)"], ["Memory", m["memory"]],
                         ["Kernel", m["kernel"]], ["OS", m["os"]], ["Python", m["python"]]]
              + [[k, v] for k, v in doc["versions"].items()]), "",
        "## Targets (usvc)", "",
        table(["target", "measured", "verdict"],
              [[t["target"], t["measured"], t["verdict"]] for t in doc["targets"]]), "",
    ]
    missed = [t for t in doc["targets"] if is_missed(t)]
    if missed:
        out += ["### Missed targets: by how much, why, and what would close it", ""]
        out += [f"- **{t['target']}** ({t['measured']}): {t.get('why', '')}" for t in missed]
        out += [""]

    gaps = respawn_gaps(res)
    rows = []
    for name, v in sorted(res["respawn"].items(), key=lambda kv: kv[0] != USVC):
        if v.get("status") != "ok":
            rows.append(not_ok_row(name, v, 7))
        else:
            vs = gap_verdict(gaps[name]).split(" (")[0] if name in gaps else "—"
            rows.append([name, fmt(v["median_ms"]), fmt(v["p95_ms"]), fmt(v["min_ms"]),
                         fmt(v["max_ms"]), v["n"], vs])
    out += [f"## 1. Respawn latency ({cfg['kills']} SIGKILLs each)", "",
            respawn_method_line(doc), "",
            table(["supervisor", "median ms", "p95 ms", "min ms", "max ms", "kills",
                   "usvc vs this row (median gap)"], rows), ""]
    loop = gaps.get(TMUX_LOOP)
    if loop:
        out += [f"Against the bare tmux loop: {gap_verdict(loop)}.", ""]

    rows = []
    for name, v in sorted(res["memory"].items(), key=lambda kv: kv[0] != USVC):
        if v.get("status") != "ok":
            rows.append(not_ok_row(name, v, 7))
            continue
        rows.append([name, v["per_job_process"], fmt(v.get("per_process_median_kib"), ".0f"),
                     fmt(v.get("per_process_max_kib"), ".0f"), v["shared_process"],
                     fmt(v["shared_kib"] or None, ".0f"), fmt(v["per_job_total_kib"], ".0f")])
    out += [f"## 2. Memory per job ({cfg['jobs']} jobs, USS in KiB)", "",
            table(["supervisor", "per-job process", "its USS (median)", "its USS (max)",
                   "shared process", "shared USS (total)", "per job (all / jobs)"], rows), ""]
    extra = res["memory"].get(USVC, {}).get("tmux_server_kib_at_max")
    if extra:
        out += [f"usvc's tmux server at {extra['jobs']} jobs: {extra['kib']} KiB USS.", ""]
    out += probes_lines(res.get("probes"))

    rows = []
    for name, v in res["cli"].items():
        cmd, _, jobs = name.rpartition(" @")
        if v.get("status") != "ok":
            rows.append([f"`{cmd}`", jobs, v.get("status", "?"), "—", "—"])
        else:
            rows.append([f"`{cmd}`", jobs, fmt(v["median_ms"], ".1f"), fmt(v["p95_ms"], ".1f"), v["n"]])
    out += ["## 3. CLI latency (wall time of one client call)", "",
            table(["command", "jobs", "median ms", "p95 ms", "runs"], rows), ""]

    st = res["start"]
    out += ["## 4. Start / stop throughput (usvc)", ""]
    if st.get("status") != "ok":
        out += [f"usvc: {st.get('status')}", ""]
    else:
        job = " ".join(doc.get("method", {}).get("job_argv", ["JOB"]))
        rows = [[f"`usvc start -n {st['start_n']['jobs']} g {job}` (fresh USVC_HOME)",
                 st["start_n"]["jobs"], fmt(st["start_n"]["wall_s"], ".3f"),
                 fmt(st["start_n"]["per_job_ms"], ".1f")],
                [f"{st['start_single']['jobs']} x `usvc start h {job}`",
                 st["start_single"]["jobs"], fmt(st["start_single"]["wall_s"], ".3f"),
                 fmt(st["start_single"]["median_ms"], ".1f") + " (median)"],
                [f"`usvc stop all` ({st['stop_all']['jobs']} jobs)", st["stop_all"]["jobs"],
                 fmt(st["stop_all"]["wall_s"], ".3f"), fmt(st["stop_all"]["per_job_ms"], ".1f")]]
        out += [table(["operation", "jobs", "wall s", "per job ms"], rows), ""]

    rows = []
    for name, v in sorted(res["crashloop"].items(), key=lambda kv: kv[0] != USVC):
        if v.get("status") != "ok":
            rows.append(not_ok_row(name, v, 5))
        else:
            rows.append([name, fmt(v["cpu_s"], ".2f"), fmt(v["cpu_ms_schedstat"], ".1f"),
                         fmt(v["cpu_pct"], ".3f"), v["starts"]])
    out += [f"## 5. Crash-loop cost ({cfg['crash_s']:.0f} s of a job that exits at once)", "",
            table(["supervisor", "CPU s (stat ticks)", "CPU ms (schedstat)", "% of one core",
                   "starts in window"], rows), ""]
    out += extra_sections(doc, 5)

    if doc["errors"]:
        # Indented continuation lines keep a multi-line error (a traceback)
        # inside its list item.
        out += ["## Errors", ""] + ["- " + e.rstrip().replace("\n", "\n  ")
                                     for e in doc["errors"]] + [""]

    out += ["## How to read it", ""] + how_to_read(doc) + [""]
    return "\n".join(out)

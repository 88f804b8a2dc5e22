"""usvc's targets, the verdict on each from the run's figures, and for a
missed one an explanation whose every figure is computed from the same run.

A target's threshold is data (`limit`): its text is printed from it and its
verdict computed with it, so the two cannot disagree. The limits are goals
set for usvc, not measurements.
"""

from .common import median_gap
from .supervisors import TmuxLoop, Usvc

# key, text ({limit} and {jobs} filled in), limit, what it is measured at.
# Issue 11 set the runner, status, respawn and chatty-job targets; issue 9 the
# conf writes'.
TARGETS = [
    dict(key="respawn_abs", text="respawn median <= {limit:g} ms", limit=2),
    dict(key="respawn_peers", text="respawn median faster than every peer", limit=None),
    dict(key="respawn_vs_tmux_loop", text="respawn strictly ahead of the bare tmux loop "
         "(the whole bootstrap interval of the median gap below zero)", limit=None),
    dict(key="runner_uss", text="runner USS <= {limit:g} KiB ({jobs} jobs)", limit=64, jobs=100),
    dict(key="runner_vs_runsv", text="runner USS below runsv's ({jobs} jobs, medians)", limit=None,
         jobs=100),
    # Issue 13: what health checks add to a runner.
    dict(key="probes_uss", text="an http:// readiness and a tcp: health check (every {interval:g} s) move the "
         "runner's USS by <= {limit:g} KiB ({jobs} jobs, medians)", limit=8, jobs=100, interval=1),
    dict(key="status_small", text="`usvc status` at {jobs} jobs <= {limit:g} ms", limit=4, jobs=100),
    dict(key="status_large", text="`usvc status` at {jobs} jobs <= {limit:g} ms", limit=30, jobs=1000),
    dict(key="status_vs_sv_small", text="`usvc status` no slower than `sv status` ({jobs} jobs)",
         limit=None, jobs=100),
    dict(key="status_vs_sv_large", text="`usvc status` no slower than `sv status` ({jobs} jobs)",
         limit=None, jobs=1000),
    dict(key="status_vs_supervisorctl",
         text="`usvc status` >= {limit:g}x faster than `supervisorctl status` ({jobs} jobs)",
         limit=10, jobs=100),
    dict(key="start_n", text="`usvc start -n {jobs}` <= {limit:g} s", limit=2, jobs=100),
    dict(key="chatty_tmux_uss", text="tmux server USS <= {limit:g} MiB after {jobs} jobs each printed "
         "{lines:,} lines of {width} characters", limit=24, jobs=100, lines=3000, width=120),
    dict(key="chatty_write_vs_supervisors",
         text="a job writing {mb:g} MB of lines finishes faster under usvc than under every peer",
         limit=None, mb=200),
    dict(key="chatty_write_vs_file",
         text="a job writing {mb:g} MB of lines under usvc within {limit:g}x of straight to a file",
         limit=1.5, mb=200),
    dict(key="conf_writes", text="`usvc start`/`load` at 10, 100 and the cap of conf values within "
         "{limit_s:g} s and {limit_mib:g} MiB each", limit=None, limit_s=2, limit_mib=256),
    # Issue 12: the board.
    dict(key="board_local_cpu", text="CPU of `usvc top` watching {jobs} local jobs for {seconds} s "
         "<= {limit:g}% of one core", limit=2, jobs=100, seconds=30),
    dict(key="board_hosts_cpu", text="CPU of `usvc top --hosts` watching {hosts} hosts for {seconds} s, "
         "its ssh included, the remote side excluded, <= {limit:g}% of one core", limit=10, hosts=100,
         seconds=30),
    # Issue 13 (health): bench/health.py measures both.
    dict(key="ready_to_dependent", text="a job's port opening to its dependent's program exec'd (`after`, "
         "`tcp:` readiness, default ready-interval) <= {limit:g} ms median", limit=150),
    dict(key="health_cpu", text="CPU of {jobs} runners each probing `tcp:` health every 1 s <= {limit:g}% "
         "of one core", limit=1, jobs=100),
]

USVC, TMUX_LOOP = Usvc.name, TmuxLoop.name


def ok(v):
    return v if v and v.get("status") == "ok" else None


def ms(x):
    """A duration in ms as the report prints it: 3 significant decimals below
    1 ms (respawn gaps are tens of µs), 2 below 100, 1 above."""
    return f"{x:.3f}" if abs(x) < 1 else f"{x:.2f}" if abs(x) < 100 else f"{x:.1f}"


def gap_verdict(gap, who="usvc"):
    """`who` ahead of / behind the other, or within this run's noise, from
    common.median_gap's interval: a gap is only called when the whole
    interval lies on one side of zero."""
    interval = (f"{gap['confidence']:.0%} bootstrap interval of the gap {ms(gap['low'])} to "
                f"{ms(gap['high'])} ms, {gap['n_a']} and {gap['n_b']} kills")
    if gap["low"] > 0:
        return f"{who} is behind by {ms(gap['gap'])} ms ({interval})"
    if gap["high"] < 0:
        return f"{who} is ahead by {ms(-gap['gap'])} ms ({interval})"
    spread = (gap["high"] - gap["low"]) / 2
    return (f"{who} is level within this run's noise: gap {ms(gap['gap'])} ms, "
            f"spread ±{ms(spread)} ms ({interval})")


def respawn_gaps(res):
    """{peer: median_gap(usvc, peer)} for every peer measured with usvc, from
    the samples kept in the results."""
    mine = ok(res["respawn"].get(USVC))
    if not mine or not mine.get("samples_ms"):
        return {}
    return {name: median_gap(mine["samples_ms"], v["samples_ms"])
            for name, v in res["respawn"].items()
            if name != USVC and ok(v) and v.get("samples_ms")}


def status_rows(res):
    """[(jobs, median ms)] of `usvc status`, by job count."""
    out = []
    for key, v in res["cli"].items():
        cmd, _, jobs = key.rpartition(" @")
        if cmd == "usvc status" and ok(v):
            out.append((int(jobs), v["median_ms"]))
    return sorted(out)


def extra_rows(res, section):
    """The rows of a ModulePhase section (harness), [] when it did not run."""
    v = res.get("extra", {}).get(section)
    return v.get("rows") or [] if v and v.get("status") == "ok" else []


def extra_status(res, section):
    v = res.get("extra", {}).get(section)
    return v.get("status", "?") if v else "not run"


def chatty_rows(res, measure):
    """{subject: row} of one measure of the chatty phase."""
    return {r["subject"]: r for r in extra_rows(res, "chatty") if r.get("measure") == measure}


def unmeasured(rows):
    """'name: why' of the rows whose subject could not be measured."""
    return "; ".join(f"{name}: {r.get('status')}" for name, r in rows.items() if r.get("status") != "ok")


# Each evaluator gets (results, target) and returns None when the run did not
# measure it, else (what was measured, None when met or the shortfall: the
# "by X" of "missed by X", from the run's figures).

def eval_respawn_abs(res, t):
    v = ok(res["respawn"].get(USVC))
    if not v:
        return None
    m = v["median_ms"]
    return f"{ms(m)} ms", None if m <= t["limit"] else f"{ms(m - t['limit'])} ms"


def eval_respawn_peers(res, t):
    v = ok(res["respawn"].get(USVC))
    peers = {k: p["median_ms"] for k, p in res["respawn"].items() if k != USVC and ok(p)}
    if not v or not peers:
        return None
    best = min(peers, key=peers.get)
    gap = v["median_ms"] - peers[best]
    return (f"{ms(v['median_ms'])} ms vs {ms(peers[best])} ms ({best})",
            None if gap < 0 else f"{ms(gap)} ms (behind {best})")


def eval_respawn_vs_tmux_loop(res, t):
    gap = respawn_gaps(res).get(TMUX_LOOP)
    if not gap:
        return None
    measured = (f"median gap {ms(gap['gap'])} ms, interval {ms(gap['low'])} to {ms(gap['high'])} ms")
    return measured, None if gap["high"] < 0 else f"{ms(gap['high'])} ms (upper end of the interval)"


def eval_runner_uss(res, t):
    v = ok(res["memory"].get(USVC))
    if not v or "per_process_median_kib" not in v:
        return None
    m = v["per_process_median_kib"]
    measured = f"{m:.0f} KiB median, {v['per_process_max_kib']:.0f} KiB max at {v['jobs']} jobs"
    if v["jobs"] != t["jobs"]:
        return measured + " (not the target's job count)", "n/a"
    return measured, None if m <= t["limit"] else f"{m - t['limit']:.0f} KiB"


def eval_runner_vs_runsv(res, t):
    mine, runsv = ok(res["memory"].get(USVC)), res["memory"].get("runit (runsv)")
    if not mine or "per_process_median_kib" not in mine:
        return None
    if not ok(runsv):
        return f"runsv not measured ({(runsv or {}).get('status', 'not run')})", "n/a"
    a, b = mine["per_process_median_kib"], runsv["per_process_median_kib"]
    measured = f"runner {a:.0f} KiB vs runsv {b:.0f} KiB"
    if mine["jobs"] != t["jobs"] or runsv["jobs"] != t["jobs"]:
        return measured + " (not the target's job count)", "n/a"
    return measured, None if a < b else f"{a - b:.0f} KiB"


def eval_probes_uss(res, t):
    v = ok(res.get("probes"))
    if not v:
        return None
    plain, probed = v["plain"]["median_kib"], v["probed"]["median_kib"]
    measured = (f"{probed:.0f} KiB with the checks vs {plain:.0f} KiB without ({probed - plain:+.0f} KiB) "
                f"at {v['jobs']} jobs each")
    if v["jobs"] != t["jobs"] or v["health_interval_s"] != t["interval"]:
        return measured + " (not the target's job count or interval)", "n/a"
    return measured, None if probed - plain <= t["limit"] else f"{probed - plain - t['limit']:.0f} KiB"


def eval_status(res, t):
    v = ok(res["cli"].get(f"usvc status @{t['jobs']}"))
    if not v:
        return None
    m = v["median_ms"]
    return f"{ms(m)} ms", None if m <= t["limit"] else f"{ms(m - t['limit'])} ms"


def eval_status_vs_sv(res, t):
    mine, theirs = res["cli"].get(f"usvc status @{t['jobs']}"), res["cli"].get(f"sv status @{t['jobs']}")
    if not ok(mine):
        return None
    if not ok(theirs):
        return f"`sv status` not measured ({(theirs or {}).get('status', 'not run')})", "n/a"
    a, b = mine["median_ms"], theirs["median_ms"]
    return f"{ms(a)} ms vs {ms(b)} ms", None if a <= b else f"{ms(a - b)} ms"


def eval_status_vs_supervisorctl(res, t):
    mine, theirs = (ok(res["cli"].get(f"{c} status @{t['jobs']}")) for c in ("usvc", "supervisorctl"))
    if not mine:
        return None
    if not theirs:
        why = res["cli"].get(f"supervisorctl status @{t['jobs']}", {}).get("status", "not run")
        return f"`supervisorctl status` not measured ({why})", "n/a"
    ratio = theirs["median_ms"] / mine["median_ms"]
    measured = f"{ratio:.1f}x ({ms(theirs['median_ms'])} vs {ms(mine['median_ms'])} ms)"
    return measured, None if ratio >= t["limit"] else f"{t['limit'] - ratio:.1f}x"


def eval_start_n(res, t):
    start = res["start"].get("start_n") if ok(res["start"]) else None
    if not start or start["jobs"] != t["jobs"]:
        return None
    w = start["wall_s"]
    return f"{w:.2f} s", None if w <= t["limit"] else f"{w - t['limit']:.2f} s"


def eval_chatty_tmux_uss(res, t):
    v = chatty_rows(res, "USS of what holds the output").get(USVC)
    if not v or v.get("status") != "ok":
        return None
    mib = v["value"] / 1024
    measured = f"{mib:.1f} MiB at {v['jobs']} jobs x {v['lines']:,} lines of {v['width']}"
    if (v["jobs"], v["lines"], v["width"]) != (t["jobs"], t["lines"], t["width"]):
        return measured + " (not the target's size)", "n/a"
    peers = [f"{name} {r['value'] / 1024:.1f} MiB"
             for name, r in chatty_rows(res, "USS of what holds the output").items()
             if name != USVC and r.get("status") == "ok"]
    if peers:
        measured += "; " + ", ".join(peers)
    return measured, None if mib <= t["limit"] else f"{mib - t['limit']:.1f} MiB"


def chatty_size_note(v, t):
    mb = v.get("bytes", 0) / 1e6
    return "" if mb == t["mb"] else f" (at {mb:g} MB, not the target's size)"


def eval_chatty_write_vs_supervisors(res, t):
    rows = chatty_rows(res, "write time")
    mine = rows.get(USVC)
    if not mine or mine.get("status") != "ok":
        return None
    peers = {name: r for name, r in rows.items() if name not in (USVC, "file", "pty")}
    measured_peers = {name: r["value"] for name, r in peers.items() if r.get("status") == "ok"}
    missing = unmeasured(peers)
    measured = f"usvc {mine['value']:.2f} s" + "".join(f", {n} {v:.2f} s" for n, v in measured_peers.items())
    if missing:
        measured += f"; not measured: {missing}"
    note = chatty_size_note(mine, t)
    if not measured_peers or missing or note:
        return measured + note, "n/a"
    best = min(measured_peers, key=measured_peers.get)
    gap = mine["value"] - measured_peers[best]
    return measured, None if gap < 0 else f"{gap:.2f} s (behind {best})"


def eval_chatty_write_vs_file(res, t):
    rows = chatty_rows(res, "write time")
    mine, file = rows.get(USVC), rows.get("file")
    if not mine or mine.get("status") != "ok" or not file or file.get("status") != "ok":
        return None
    ratio = mine["value"] / file["value"]
    measured = f"{ratio:.2f}x ({mine['value']:.2f} s vs {file['value']:.2f} s)"
    note = chatty_size_note(mine, t)
    if note:
        return measured + note, "n/a"
    return measured, None if ratio <= t["limit"] else f"{ratio - t['limit']:.2f}x"


def eval_conf_writes(res, t):
    rows = extra_rows(res, "conf_writes")
    if not rows:
        return None
    worst_s = max(rows, key=lambda r: r["seconds"])
    worst_mib = max(rows, key=lambda r: r["peak_mib"])
    measured = (f"slowest {worst_s['seconds']:.3f} s ({worst_s['what']}), largest "
                f"{worst_mib['peak_mib']:.1f} MiB ({worst_mib['what']})")
    sizes = {r["values"] for r in rows}
    if not {10, 100, rows[0].get("cap")} <= sizes:
        return measured + " (not every size measured)", "n/a"
    over = []
    if worst_s["seconds"] > t["limit_s"]:
        over.append(f"{worst_s['seconds'] - t['limit_s']:.3f} s")
    if worst_mib["peak_mib"] > t["limit_mib"]:
        over.append(f"{worst_mib['peak_mib'] - t['limit_mib']:.1f} MiB")
    return measured, " and ".join(over) or None


def board_row(res, key):
    """The board phase's row of `key` (local_cpu, hosts_cpu), None when not there."""
    return next((r for r in extra_rows(res, "board") if r.get("key") == key), None)


def eval_board_cpu(res, t):
    row = board_row(res, "hosts_cpu" if t["key"] == "board_hosts_cpu" else "local_cpu")
    if not row:
        return None
    if row.get("status", "ok") != "ok" or "cpu_percent" not in row:
        return f"not measured ({row.get('value', row.get('status'))})", "n/a"
    size, unit = (row.get("hosts"), "hosts") if "hosts" in t else (row.get("jobs"), "jobs")
    cpu = row["cpu_percent"]
    measured = f"{cpu:.2f}% at {size} {unit} over {row.get('seconds')} s"
    if row.get("detail"):
        measured += f" ({row['detail']})"
    if size != t.get("hosts", t.get("jobs")) or row.get("seconds") != t["seconds"]:
        return measured + " (not the target's size)", "n/a"
    return measured, None if cpu <= t["limit"] else f"{cpu - t['limit']:.2f} points"


def health_row(res, key):
    """The row of bench/health.py measuring `key`, or None."""
    return next((r for r in extra_rows(res, "health") if r.get("key") == key), None)


def eval_ready_to_dependent(res, t):
    row = health_row(res, t["key"])
    if not row:
        return None
    measured = f"{row['value']:g} ms median ({row['detail']})"
    return measured, None if row["value"] <= t["limit"] else f"{row['value'] - t['limit']:.2f} ms"


def eval_health_cpu(res, t):
    row = health_row(res, t["key"])
    if not row:
        return None
    measured = f"{row['value']:g}% of one core at {row['jobs']} runners ({row['detail']})"
    if row["jobs"] != t["jobs"]:
        return measured + " (not the target's size)", "n/a"
    return measured, None if row["value"] <= t["limit"] else f"{row['value'] - t['limit']:.2f} points"


EVALUATE = dict(respawn_abs=eval_respawn_abs, respawn_peers=eval_respawn_peers,
                respawn_vs_tmux_loop=eval_respawn_vs_tmux_loop, runner_uss=eval_runner_uss,
                runner_vs_runsv=eval_runner_vs_runsv, status_small=eval_status,
                status_large=eval_status, status_vs_sv_small=eval_status_vs_sv,
                status_vs_sv_large=eval_status_vs_sv,
                status_vs_supervisorctl=eval_status_vs_supervisorctl, start_n=eval_start_n,
                chatty_tmux_uss=eval_chatty_tmux_uss,
                chatty_write_vs_supervisors=eval_chatty_write_vs_supervisors,
                chatty_write_vs_file=eval_chatty_write_vs_file, conf_writes=eval_conf_writes,
                probes_uss=eval_probes_uss, board_local_cpu=eval_board_cpu,
                board_hosts_cpu=eval_board_cpu, ready_to_dependent=eval_ready_to_dependent,
                health_cpu=eval_health_cpu)


def is_missed(target_row):
    return target_row["verdict"].startswith("missed")


def evaluate_targets(res):
    """[{key, target, measured, verdict, why}] for usvc's targets. verdict:
    "met", "missed by X" (X computed from this run's figures), or "n/a" when
    not measured (the measured column says why: a peer that could not run, a
    size other than the target's); `why` explains a missed one from this
    run's figures."""
    out = []
    for t in TARGETS:
        key = t["key"]
        text = t["text"].format(**{k: v if v is not None else 0 for k, v in t.items()})
        got = EVALUATE[key](res, t)
        if got is None:
            measured, verdict = "not measured", "n/a"
        else:
            measured, short = got
            verdict = "met" if short is None else "n/a" if short == "n/a" else f"missed by {short}"
        row = dict(key=key, target=text, measured=measured, verdict=verdict)
        if is_missed(row):
            row["why"] = WHY[key](res, t)
        out.append(row)
    return out


# Why a target is missed and what would close it. The method and the design
# are described in words; every figure is taken from the run's results.

def why_respawn_abs(res, t):
    text = ("What the runner does between being told of the exit (SIGCHLD) and the clone of "
            "the replacement is its own share; the rest is the kernel's: the killed job's exit "
            "before its parent is told, and the exec of the new program. Everything after the "
            "spawn (lines, events, state) waits until the new program has exec'd: the runner is "
            "SCHED_BATCH across the clone, so it does not preempt its exec'ing child.")
    loop = ok(res["respawn"].get(TMUX_LOOP))
    if loop:
        text += (f" In this run the bare tmux loop, which does little more than the kernel's "
                 f"share, took {ms(loop['median_ms'])} ms (median).")
    return text


def why_respawn_peers_loop_text():
    return ("That loop keeps no log, no state, no back-off and does not clean up a process "
            "tree: it is the floor, not a supervisor. Before its spawn usvc does what the "
            "loop does (reap the zombie) and more: it reads the job's pending output (so "
            "that it lands before the exit line), checks whether the spec changed and "
            "records the program file's identity (a stat each), and lets its state machine "
            "decide. Its argv and environment are already C arrays and its child makes only "
            "the calls needed. What is left to take: the two stats (inotify watches instead).")


def why_respawn_peers(res, t):
    peers = {k: v["median_ms"] for k, v in res["respawn"].items() if k != USVC and ok(v)}
    best = min(peers, key=peers.get)
    gap = respawn_gaps(res).get(best)
    text = f"The fastest peer in this run is {best}. "
    if gap:
        text += gap_verdict(gap) + ". "
    if best == TMUX_LOOP:
        text += why_respawn_peers_loop_text()
    return text.rstrip()


def status_growth(res):
    """`usvc status`'s cost per job in this run, between its smallest and its
    largest measured job counts, as text; '' with fewer than two counts."""
    rows = status_rows(res)
    if len(rows) < 2 or rows[-1][0] == rows[0][0]:
        return ""
    (n0, t0), (n1, t1) = rows[0], rows[-1]
    per_job = (t1 - t0) / (n1 - n0)
    return (f"`usvc status` took {ms(t0)} ms at {n0} jobs and {ms(t1)} ms at {n1}: "
            f"{ms(per_job)} ms more per job, its /proc and state-file reads.")


def why_status(res, t):
    text = ("Every usvc command pays a fixed start-up (libgit2 is loaded only by the commands "
            "that touch confs); status adds its reads of each job's state and its runner's "
            "children, with no /proc scan.")
    jobs = next((v for k, v in res["cli"].items() if k.startswith("usvc jobs @") and ok(v)), None)
    if jobs:
        text += (f" In this run `usvc jobs`, which only lists names, took {ms(jobs['median_ms'])} "
                 f"ms at {jobs['jobs']} jobs: about that fixed start-up.")
    growth = status_growth(res)
    return text + (" " + growth if growth else "")


def why_status_vs_supervisorctl(res, t):
    v = ok(res["cli"].get(f"supervisorctl status @{t['jobs']}"))
    text = "Compare the two rows of the same run."
    if v:
        text = (f"`supervisorctl status` took {ms(v['min_ms'])} to {ms(v['max_ms'])} ms over this "
                f"run's {v['n']} timed calls. " + text)
    return text


def why_start_n(res, t):
    return ("Each job waits for its runner to report the exec; windows open in batches, several "
            "per tmux call.")


def why_runner_uss(res, t):
    return "The runner is a static executable; its private memory is its heap and stack."


def why_probes_uss(res, t):
    v = res["probes"]
    return ("A check in flight holds a socket and, for http, its request and the answer's first line; "
            "between checks a runner keeps only what their first use made for good (the types' "
            "metadata, the stack depth they reached until the next change of state gives it back). "
            f"In this run the target port answered {v['readiness_gets']} readiness requests and took "
            f"{v['health_connections']} health connections from {v['jobs']} runners.")


def why_respawn_vs_tmux_loop(res, t):
    text = f"Against the bare tmux loop: {gap_verdict(respawn_gaps(res)[TMUX_LOOP])}. "
    return text + why_respawn_peers_loop_text()


def why_runner_vs_runsv(res, t):
    return ("runsv is a dynamically linked C program: its private memory is mostly the dynamic "
            "loader's relocations; the runner is static, so what it has beyond a static C floor is "
            "its own data, heap and stack.")


def why_status_vs_sv(res, t):
    return ("`sv status` reads each service's supervise/status file; `usvc status` reads each "
            "job's state file and its runner's children. " + status_growth(res)).strip()


def why_chatty_tmux_uss(res, t):
    return ("The tmux server keeps each pane's scrollback (`history-limit` lines per pane) and its "
            "grid in its own heap: it grows with what the jobs print, up to that limit, while the "
            "full output is in the logs.")


def why_chatty_write(res, t):
    text = ("A job under usvc writes to a pseudo-terminal: the runner reads it, writes the log and "
            "feeds the pane; the peers give the job a pipe to a logger.")
    pty = chatty_rows(res, "write time").get("pty")
    if pty and pty.get("status") == "ok":
        text += (f" In this run the same job on a bare pseudo-terminal read by a plain loop took "
                 f"{pty['value']:.2f} s: the floor for any job that has a terminal.")
    cpu = chatty_rows(res, "supervisor CPU per MB").get(USVC)
    if cpu and cpu.get("status") == "ok":
        text += f" usvc's side spent {cpu['value']:g} ms of CPU per MB ({cpu.get('detail', '')})."
    return text


def why_conf_writes(res, t):
    return ("Each conf key is written by one libgit2 call and read back; the rows of the "
            "conf-writes table give each size's time and peak memory.")


def why_board_cpu(res, t):
    row = board_row(res, "hosts_cpu" if t["key"] == "board_hosts_cpu" else "local_cpu") or {}
    if t["key"] == "board_hosts_cpu":
        text = ("The board decodes one JSON line per host per refresh and redraws only the cells that "
                "changed; each host's ssh client (and its control master) wakes once per line.")
    else:
        text = ("Each refresh reads every job's state file and its runner's children from /proc, then "
                "redraws only the cells that changed.")
    return text + (f" In this run: {row['detail']}." if row.get("detail") else "")


def why_ready_to_dependent(res, t):
    row = health_row(res, t["key"])
    return ("The figure is the readiness probe's wait (a connect every ready-interval, so up to "
            "one interval after the port opens), the connect, the runner's state write, the "
            "dependent's runner learning of it (inotify on the state file), its spawn and exec, "
            f"and bash's start-up; this run's trials ranged {row['detail']}.")


def why_health_cpu(res, t):
    row = health_row(res, t["key"])
    return ("Each check is one wake-up of the runner (its poll's timeout) and five system calls: "
            "socket, a non-blocking connect, the poll saying it connected, getsockopt, close. "
            "Loopback TCP does the whole handshake, and the close's, in the connecting process, "
            "so nearly all of it is the kernel's, charged to the runner; a runner idle in between "
            f"starts each check from cold caches. This run: {row['detail']}." + health_floor_text(res, t, row))


def health_floor_text(res, t, row):
    """health_cpu's row against the floor bench/health.py measured in the same
    run (bare C checkers), '' when the run has no floor row."""
    floor = health_row(res, "health_cpu_floor")
    if not floor:
        return ""
    if floor.get("status", "ok") != "ok":
        return f" The floor (a bare C program doing the same check) was {floor['value']}."
    mine, bare = row.get("cpu_us_per_check"), floor["cpu_us_per_check"]
    text = (f" In this run {floor['jobs']} copies of a bare C program doing the same check once a second "
            f"(the same calls, its wait a poll timeout too) cost {bare:g} µs of CPU per check, "
            f"{floor['value']:g}% of one core: this machine's floor for a check a second.")
    if mine and bare > 0:
        side = "above" if mine >= bare else "below"
        text += (f" usvc's runner, at {mine:g} µs per check, is at {mine / bare:.2f}x that floor "
                 f"({abs(mine - bare):.0f} µs per check {side} it; the two windows are one after the "
                 "other, so the machine's other load differs between them).")
    if floor["jobs"] == t["jobs"] and floor["value"] > t["limit"]:
        text += (f" The floor alone is above the target, by {floor['value'] - t['limit']:.2f} points: in this "
                 f"run {t['jobs']} processes doing nothing but this check once a second did not meet it.")
    return text


WHY = dict(respawn_abs=why_respawn_abs, respawn_peers=why_respawn_peers,
           respawn_vs_tmux_loop=why_respawn_vs_tmux_loop, runner_uss=why_runner_uss,
           runner_vs_runsv=why_runner_vs_runsv, status_small=why_status, status_large=why_status,
           status_vs_sv_small=why_status_vs_sv, status_vs_sv_large=why_status_vs_sv,
           status_vs_supervisorctl=why_status_vs_supervisorctl, start_n=why_start_n,
           chatty_tmux_uss=why_chatty_tmux_uss, chatty_write_vs_supervisors=why_chatty_write,
           chatty_write_vs_file=why_chatty_write, conf_writes=why_conf_writes,
           probes_uss=why_probes_uss, board_local_cpu=why_board_cpu, board_hosts_cpu=why_board_cpu,
           ready_to_dependent=why_ready_to_dependent, health_cpu=why_health_cpu)

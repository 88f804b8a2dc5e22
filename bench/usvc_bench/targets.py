"""usvc's targets, the verdict on each from the run's figures, and for a
missed one an explanation whose every figure is computed from the same run.

A target's threshold is data (`limit`): its text is printed from it and its
verdict computed with it, so the two cannot disagree. The limits are goals
set for usvc, not measurements.
"""

from .common import median_gap
from .supervisors import TmuxLoop, Usvc

# key, text ({limit} and {jobs} filled in), limit, what it is measured at.
TARGETS = [
    dict(key="respawn_abs", text="respawn median <= {limit:g} ms", limit=2),
    dict(key="respawn_peers", text="respawn median faster than every peer", limit=None),
    dict(key="runner_uss", text="runner USS <= {limit:g} KiB", limit=256),
    dict(key="status_small", text="`usvc status` at {jobs} jobs <= {limit:g} ms", limit=20, jobs=100),
    dict(key="status_large", text="`usvc status` at {jobs} jobs <= {limit:g} ms", limit=120, jobs=1000),
    dict(key="status_vs_supervisorctl",
         text="`usvc status` >= {limit:g}x faster than `supervisorctl status` ({jobs} jobs)",
         limit=10, jobs=100),
    dict(key="start_n", text="`usvc start -n {jobs}` <= {limit:g} s", limit=2, jobs=100),
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


def evaluate_targets(res):
    """[{key, target, measured, verdict, why}] for usvc's targets; verdict n/a
    when not measured; `why` explains a missed one from this run's figures."""
    resp = ok(res["respawn"].get(USVC))
    peers = {k: v["median_ms"] for k, v in res["respawn"].items() if k != USVC and ok(v)}
    mem = ok(res["memory"].get(USVC))
    start = res["start"].get("start_n") if ok(res["start"]) else None
    out = []
    for t in TARGETS:
        key, limit, jobs = t["key"], t["limit"], t.get("jobs")
        text = t["text"].format(limit=limit or 0, jobs=jobs)
        measured, met = None, None
        if key == "respawn_abs" and resp:
            measured, met = f"{resp['median_ms']:.2f} ms", resp["median_ms"] <= limit
        elif key == "respawn_peers" and resp and peers:
            best = min(peers, key=peers.get)
            measured = f"{resp['median_ms']:.2f} ms vs {peers[best]:.2f} ms ({best})"
            met = resp["median_ms"] < peers[best]
        elif key == "runner_uss" and mem and "per_process_median_kib" in mem:
            measured = (f"{mem['per_process_median_kib']:.0f} KiB median, "
                        f"{mem['per_process_max_kib']:.0f} KiB max")
            met = mem["per_process_median_kib"] <= limit
        elif key in ("status_small", "status_large") and ok(res["cli"].get(f"usvc status @{jobs}")):
            v = res["cli"][f"usvc status @{jobs}"]
            measured, met = f"{v['median_ms']:.1f} ms", v["median_ms"] <= limit
        elif key == "status_vs_supervisorctl":
            mine, theirs = (ok(res["cli"].get(f"{c} status @{jobs}")) for c in ("usvc", "supervisorctl"))
            if mine and theirs:
                ratio = theirs["median_ms"] / mine["median_ms"]
                measured = f"{ratio:.1f}x ({theirs['median_ms']:.0f} vs {mine['median_ms']:.1f} ms)"
                met = ratio >= limit
        elif key == "start_n" and start and start["jobs"] == jobs:
            measured, met = f"{start['wall_s']:.2f} s", start["wall_s"] <= limit
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        row = dict(key=key, target=text, measured=measured or "not measured", verdict=verdict)
        if verdict == "MISSED":
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


def why_respawn_peers(res, t):
    peers = {k: v["median_ms"] for k, v in res["respawn"].items() if k != USVC and ok(v)}
    best = min(peers, key=peers.get)
    gap = respawn_gaps(res).get(best)
    text = f"The fastest peer in this run is {best}. "
    if gap:
        text += gap_verdict(gap) + ". "
    if best == TMUX_LOOP:
        text += ("That loop keeps no log, no state, no back-off and does not clean up a process "
                 "tree: it is the floor, not a supervisor. Before its spawn usvc does what the "
                 "loop does (reap the zombie) and more: it reads the job's pending output (so "
                 "that it lands before the exit line), checks whether the spec changed and "
                 "records the program file's identity (a stat each), and lets its state machine "
                 "decide. Its argv and environment are already C arrays and its child makes only "
                 "the calls needed. What is left to take: the two stats (inotify watches instead).")
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


WHY = dict(respawn_abs=why_respawn_abs, respawn_peers=why_respawn_peers, runner_uss=why_runner_uss,
           status_small=why_status, status_large=why_status,
           status_vs_supervisorctl=why_status_vs_supervisorctl, start_n=why_start_n)

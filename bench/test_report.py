"""Unit tests of the report's pure parts: the computed verdicts, the
--version contract with Sources/usvc/Version.swift, and that the prose takes
its figures from the run's document. `make test` runs them
(python3 -m unittest discover -s bench)."""

import argparse
import copy
import json
import os
import tempfile
import unittest

from usvc_bench.build import VERSION_LINE
from usvc_bench.harness import PHASES, ModulePhase, Run, phase_name, run_phases, select_phases
from usvc_bench.common import median_gap
from usvc_bench.report import render_markdown
from usvc_bench.targets import TARGETS, evaluate_targets, gap_verdict

HERE = os.path.dirname(os.path.abspath(__file__))


def results_doc():
    with open(os.path.join(HERE, "results.json")) as f:
        doc = json.load(f)
    doc["targets"] = evaluate_targets(doc["results"])
    return doc


class GapVerdict(unittest.TestCase):
    def test_behind_when_every_resample_is_slower(self):
        gap = median_gap([1.0 + i / 100 for i in range(30)], [0.5 + i / 100 for i in range(30)])
        self.assertGreater(gap["low"], 0)
        self.assertTrue(gap_verdict(gap).startswith("usvc is behind by 0.500 ms"))

    def test_ahead_when_every_resample_is_faster(self):
        gap = median_gap([0.5 + i / 100 for i in range(30)], [1.0 + i / 100 for i in range(30)])
        self.assertTrue(gap_verdict(gap).startswith("usvc is ahead by 0.500 ms"))

    def test_level_when_the_interval_straddles_zero(self):
        a = [0.4, 0.9, 0.5, 1.2, 0.6, 0.45, 0.8]
        gap = median_gap(a, list(reversed(a)) + [0.61])
        self.assertLess(gap["low"], 0)
        self.assertGreater(gap["high"], 0)
        self.assertIn("within this run's noise", gap_verdict(gap))

    def test_same_samples_same_interval(self):
        a, b = [0.3, 0.5, 0.7, 0.2], [0.4, 0.6, 0.1, 0.9]
        self.assertEqual(median_gap(a, b), median_gap(a, b))


class VersionLine(unittest.TestCase):
    def test_the_shapes_usvc_prints(self):
        known = VERSION_LINE.fullmatch("usvc 0.1.0 (commit " + "ab" * 20 + ", dirty tree)")
        self.assertEqual((known["commit"], known["tree"]), ("ab" * 20, "dirty"))
        self.assertIsNotNone(VERSION_LINE.fullmatch("usvc 0.1.0 (commit unknown)"))
        self.assertIsNone(VERSION_LINE.fullmatch("usvc git 12b3a21"))


class FiguresFromTheRun(unittest.TestCase):
    def test_old_document_renders_without_method_figures(self):
        doc = results_doc()
        for key in ("method", "build"):  # what a run before they were recorded lacks
            doc.pop(key, None)
        md = render_markdown(doc)
        self.assertIn("did not record the binary's own `usvc --version`", md)
        # No poll figures in the method where the run recorded none (rows may quote µs of their own).
        self.assertNotIn("µs", md.split("## How to read it")[1])

    def test_method_figures_come_from_the_document(self):
        doc = results_doc()
        doc["method"] = dict(job_argv=["sleep", "4321"], cli=dict(warmup_runs=3),
                             respawn=dict(stable_margin_s=0.3, busy_poll_s=0.07, fine_nap_s=0.00007,
                                          slow_poll_s=0.0009, quick_death_s={"usvc": 0.0}),
                             crashloop=dict(tmux_loop_sleep_s=2, stat_tick_ms=4))
        md = render_markdown(doc)
        for text in ("`sleep 4321`", "3 discarded warm-up runs", "300 ms of margin", "70 µs",
                     "70 ms after the kill", "every 900 µs", "ticks of 4 ms", "sleeps 2 s"):
            self.assertIn(text, md)

    def test_missed_explanations_quote_this_run(self):
        doc = results_doc()
        res = copy.deepcopy(doc["results"])
        res["cli"]["usvc status @100"]["median_ms"] = 25.0
        res["cli"]["usvc jobs @100"]["median_ms"] = 7.77
        why = next(t["why"] for t in evaluate_targets(res) if t["key"] == "status_small")
        self.assertIn("7.77 ms at 100 jobs", why)
        self.assertIn(f"{res['cli']['usvc status @10']['median_ms']:.2f} ms at 10 jobs", why)

    def test_build_disagreement_is_said(self):
        doc = results_doc()
        doc["build"] = dict(exe="/x/usvc", version_line="usvc 0.1.0 (commit " + "a" * 40 + ", clean tree)",
                            release="0.1.0", commit="a" * 40, dirty=False, git_head="b" * 40,
                            git_dirty=False)
        md = render_markdown(doc)
        self.assertIn("built from commit " + "a" * 40 + ", a clean tree", md)
        self.assertIn("**git disagrees**", md)
        doc["build"]["git_head"] = "a" * 40
        self.assertIn("git agrees", render_markdown(doc))


class RegisteredModulePhase(unittest.TestCase):
    def test_rows_of_a_module_become_a_section_of_the_report(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "writes.py")
            with open(path, "w") as f:
                f.write("def run(usvc_path, smoke=False):\n"
                        "    return [dict(jobs=10, ms=1.5, usvc=usvc_path, smoke=smoke)]\n")
            args = argparse.Namespace(usvc="/x/usvc", smoke=True, skip_usvc=False)
            r = Run(args, {})
            r.log = lambda msg: None
            run_phases(r, [ModulePhase("writes", "Conf writes", path=path)])
        self.assertEqual(r.errors, [])
        self.assertEqual(r.results["extra"]["writes"]["rows"],
                         [dict(jobs=10, ms=1.5, usvc="/x/usvc", smoke=True)])
        doc = results_doc()
        doc["results"]["extra"] = r.results["extra"]
        md = render_markdown(doc)
        self.assertIn("## 6. Conf writes", md)
        self.assertIn("| jobs | ms | usvc | smoke |", md)
        self.assertIn("| 10 | 1.5 | /x/usvc | True |", md)


def verdicts(res):
    return {t["key"]: t for t in evaluate_targets(res)}


def chatty_extra(rows):
    return dict(chatty=dict(title="Chatty", status="ok", rows=rows))


def chatty_row(measure, subject, value, status="ok", **extra):
    return dict(measure=measure, subject=subject, value=value, status=status, **extra)


def write_rows(usvc_s, file_s, peers, mb=200):
    rows = [chatty_row("write time", "usvc", usvc_s, bytes=int(mb * 1e6)),
            chatty_row("write time", "file", file_s, bytes=int(mb * 1e6))]
    for name, value in peers.items():
        if isinstance(value, str):
            rows.append(chatty_row("write time", name, None, status=value, bytes=int(mb * 1e6)))
        else:
            rows.append(chatty_row("write time", name, value, bytes=int(mb * 1e6)))
    return rows


class Issue11Verdicts(unittest.TestCase):
    """Each target: met, or missed by the figure computed from the run, or
    n/a with the reason when a peer or a size is missing."""

    def setUp(self):
        self.res = copy.deepcopy(results_doc()["results"])

    def test_every_target_has_an_evaluator_and_a_verdict(self):
        got = evaluate_targets(self.res)
        self.assertEqual([t["key"] for t in got], [t["key"] for t in TARGETS])
        for t in got:
            self.assertRegex(t["verdict"], r"^(met|n/a|missed by .+)$")

    def test_runner_uss_against_64_kib_and_runsv(self):
        self.res["memory"]["usvc"].update(jobs=100, per_process_median_kib=60, per_process_max_kib=62)
        self.res["memory"]["runit (runsv)"].update(jobs=100, per_process_median_kib=92)
        v = verdicts(self.res)
        self.assertEqual(v["runner_uss"]["verdict"], "met")
        self.assertEqual(v["runner_vs_runsv"]["verdict"], "met")
        self.res["memory"]["usvc"]["per_process_median_kib"] = 100
        v = verdicts(self.res)
        self.assertEqual(v["runner_uss"]["verdict"], "missed by 36 KiB")
        self.assertEqual(v["runner_vs_runsv"]["verdict"], "missed by 8 KiB")

    def test_runsv_not_run_is_said(self):
        self.res["memory"]["runit (runsv)"] = dict(status="runsv not installed")
        v = verdicts(self.res)["runner_vs_runsv"]
        self.assertEqual(v["verdict"], "n/a")
        self.assertIn("runsv not installed", v["measured"])

    def test_status_against_sv_status_at_both_counts(self):
        cli = self.res["cli"]
        cli["usvc status @100"].update(median_ms=3.5)
        cli["usvc status @1000"].update(median_ms=31.25)
        cli["sv status @100"] = dict(status="ok", jobs=100, median_ms=3.0)
        cli["sv status @1000"] = dict(status="ok", jobs=1000, median_ms=40.0)
        v = verdicts(self.res)
        self.assertEqual(v["status_small"]["verdict"], "met")
        self.assertEqual(v["status_large"]["verdict"], "missed by 1.25 ms")
        self.assertEqual(v["status_vs_sv_small"]["verdict"], "missed by 0.500 ms")
        self.assertEqual(v["status_vs_sv_large"]["verdict"], "met")

    def test_respawn_strictly_ahead_of_the_tmux_loop(self):
        resp = self.res["respawn"]
        resp["usvc"]["samples_ms"] = [0.5 + i / 100 for i in range(30)]
        resp["tmux + sh loop"]["samples_ms"] = [1.0 + i / 100 for i in range(30)]
        self.assertEqual(verdicts(self.res)["respawn_vs_tmux_loop"]["verdict"], "met")
        resp["tmux + sh loop"]["samples_ms"] = list(resp["usvc"]["samples_ms"])
        v = verdicts(self.res)["respawn_vs_tmux_loop"]
        self.assertTrue(v["verdict"].startswith("missed by "), v)
        self.assertIn("Against the bare tmux loop: usvc is level within this run's noise", v["why"])

    def test_chatty_tmux_uss_at_the_target_size_only(self):
        row = chatty_row("USS of what holds the output", "usvc", 30 * 1024, jobs=100, lines=3000, width=120)
        peer = chatty_row("USS of what holds the output", "supervisord", 20 * 1024, jobs=100, lines=3000,
                          width=120)
        self.res["extra"] = chatty_extra([row, peer])
        v = verdicts(self.res)["chatty_tmux_uss"]
        self.assertEqual(v["verdict"], "missed by 6.0 MiB")
        self.assertIn("supervisord 20.0 MiB", v["measured"])
        row["value"] = 20 * 1024
        self.assertEqual(verdicts(self.res)["chatty_tmux_uss"]["verdict"], "met")
        row["jobs"] = 3
        v = verdicts(self.res)["chatty_tmux_uss"]
        self.assertEqual(v["verdict"], "n/a")
        self.assertIn("not the target's size", v["measured"])

    def test_write_time_against_every_peer_and_the_file(self):
        peers = {"runit + svlogd -tt": 4.0, "supervisord": 5.0, "s6 + s6-log": 4.5}
        self.res["extra"] = chatty_extra(write_rows(2.0, 1.6, peers))
        v = verdicts(self.res)
        self.assertEqual(v["chatty_write_vs_supervisors"]["verdict"], "met")
        self.assertEqual(v["chatty_write_vs_file"]["verdict"], "met")
        self.res["extra"] = chatty_extra(write_rows(6.5, 1.6, peers))
        v = verdicts(self.res)
        self.assertEqual(v["chatty_write_vs_supervisors"]["verdict"], "missed by 2.50 s (behind runit + svlogd -tt)")
        self.assertEqual(v["chatty_write_vs_file"]["verdict"], "missed by 2.56x")

    def test_a_peer_that_cannot_run_makes_the_comparison_n_a_and_says_why(self):
        peers = {"runit + svlogd -tt": "svlogd not installed", "supervisord": 5.0}
        self.res["extra"] = chatty_extra(write_rows(2.0, 1.6, peers))
        v = verdicts(self.res)["chatty_write_vs_supervisors"]
        self.assertEqual(v["verdict"], "n/a")
        self.assertIn("runit + svlogd -tt: svlogd not installed", v["measured"])

    def test_write_time_at_another_size_is_not_judged(self):
        self.res["extra"] = chatty_extra(write_rows(0.08, 0.01, {"supervisord": 0.03}, mb=1))
        v = verdicts(self.res)
        self.assertEqual(v["chatty_write_vs_file"]["verdict"], "n/a")
        self.assertEqual(v["chatty_write_vs_supervisors"]["verdict"], "n/a")

    def test_conf_writes_missed_by_the_worst_row(self):
        rows = [dict(what="start with %d arguments" % n, values=n, seconds=s, peak_mib=m, cap=10000)
                for n, s, m in ((10, 0.1, 20.0), (100, 0.2, 21.0), (10000, 2.5, 300.0))]
        self.res["extra"] = dict(conf_writes=dict(title="Conf writes", status="ok", rows=rows))
        v = verdicts(self.res)["conf_writes"]
        self.assertEqual(v["verdict"], "missed by 0.500 s and 44.0 MiB")
        rows[2].update(seconds=1.0, peak_mib=100.0)
        self.assertEqual(verdicts(self.res)["conf_writes"]["verdict"], "met")
        del rows[2]
        self.assertEqual(verdicts(self.res)["conf_writes"]["verdict"], "n/a")

    def test_board_cpu_verdicts_come_from_the_board_rows(self):
        def board(rows):
            self.res["extra"] = dict(board=dict(title="Board", status="ok", rows=rows))
            return verdicts(self.res)
        local = dict(measure="cpu of usvc top", key="local_cpu", jobs=100, seconds=30, cpu_percent=1.5)
        hosts = dict(measure="cpu of usvc top --hosts", key="hosts_cpu", hosts=100, seconds=30, cpu_percent=12.25,
                     detail="board 3.00%, ssh clients 9.25%, control masters 0.00%", status="ok")
        v = board([local, hosts])
        self.assertEqual(v["board_local_cpu"]["verdict"], "met")
        self.assertEqual(v["board_hosts_cpu"]["verdict"], "missed by 2.25 points")
        self.assertIn("ssh clients 9.25%", v["board_hosts_cpu"]["why"])
        hosts.update(cpu_percent=4.0)
        self.assertEqual(board([local, hosts])["board_hosts_cpu"]["verdict"], "met")
        # A smoke run's sizes are not the target's; a run without root measured nothing.
        smoke = dict(hosts, hosts=3, seconds=3)
        self.assertEqual(board([local, smoke])["board_hosts_cpu"]["verdict"], "n/a")
        skipped = dict(measure="cpu of usvc top --hosts", key="hosts_cpu", hosts=100, seconds=30, status="skipped",
                       value="not measured: needs root (useradd, sshd)")
        v = board([local, skipped])
        self.assertEqual(v["board_hosts_cpu"]["verdict"], "n/a")
        self.assertIn("needs root", v["board_hosts_cpu"]["measured"])
        self.assertEqual(board([])["board_hosts_cpu"]["measured"], "not measured")

    def test_health_rows_against_150_ms_and_1_percent(self):
        rows = [dict(key="ready_to_dependent", measure="port open to dependent exec'd", value=120.5,
                     unit="ms (median)", jobs=1, detail="min 60.0, max 170.0 ms", target="<= 150 ms", verdict="met"),
                dict(key="health_cpu", measure="CPU of 100 runners", value=0.4, unit="% of one core", jobs=100,
                     detail="3000 checks answered", target="<= 1%", verdict="met")]
        self.res["extra"] = dict(health=dict(title="Health", status="ok", rows=rows))
        v = verdicts(self.res)
        self.assertEqual(v["ready_to_dependent"]["verdict"], "met")
        self.assertEqual(v["health_cpu"]["verdict"], "met")
        rows[0]["value"], rows[1]["value"] = 162.25, 1.5
        v = verdicts(self.res)
        self.assertEqual(v["ready_to_dependent"]["verdict"], "missed by 12.25 ms")
        self.assertIn("min 60.0, max 170.0 ms", v["ready_to_dependent"]["why"])
        self.assertEqual(v["health_cpu"]["verdict"], "missed by 0.50 points")
        rows[1]["jobs"] = 5
        v = verdicts(self.res)["health_cpu"]
        self.assertEqual(v["verdict"], "n/a")
        self.assertIn("not the target's size", v["measured"])
        del self.res["extra"]["health"]
        self.assertEqual(verdicts(self.res)["ready_to_dependent"]["verdict"], "n/a")

    def test_health_cpu_why_is_computed_from_the_floor_of_the_same_run(self):
        usvc = dict(key="health_cpu", measure="CPU of 100 runners", value=2.4, unit="% of one core", jobs=100,
                    cpu_us_per_check=240.0, detail="3000 checks answered", target="<= 1%", verdict="missed by 1.40 points")
        floor = dict(key="health_cpu_floor", measure="CPU of 100 bare C checkers", status="ok", value=0.8,
                     unit="% of one core", jobs=100, cpu_us_per_check=80.0, detail="3000 checks answered",
                     target="- (the floor: not usvc)", verdict="-")
        self.res["extra"] = dict(health=dict(title="Health", status="ok", rows=[usvc, floor]))
        v = verdicts(self.res)["health_cpu"]
        # The verdict stays against the 1% target, the floor only explains it.
        self.assertEqual(v["verdict"], "missed by 1.40 points")
        self.assertIn("cost 80 µs of CPU per check, 0.8% of one core", v["why"])
        self.assertIn("at 240 µs per check, is at 3.00x that floor (160 µs per check above it", v["why"])
        self.assertNotIn("The floor alone", v["why"])
        floor.update(value=1.5, cpu_us_per_check=150.0)
        why = verdicts(self.res)["health_cpu"]["why"]
        self.assertIn("is at 1.60x that floor (90 µs per check above it", why)
        self.assertIn("The floor alone is above the target, by 0.50 points", why)
        floor.update(cpu_us_per_check=300.0)
        self.assertIn("is at 0.80x that floor (60 µs per check below it", verdicts(self.res)["health_cpu"]["why"])
        skipped = dict(floor, status="skipped", value="not measured: no C compiler (cc, clang, gcc)", unit="")
        del skipped["cpu_us_per_check"]
        self.res["extra"]["health"]["rows"] = [usvc, skipped]
        why = verdicts(self.res)["health_cpu"]["why"]
        self.assertIn("The floor (a bare C program doing the same check) was not measured: no C compiler", why)
        self.assertNotIn("x that floor", why)
        self.res["extra"]["health"]["rows"] = [usvc]
        self.assertNotIn("floor", verdicts(self.res)["health_cpu"]["why"])

    def test_missed_targets_are_listed_in_the_report(self):
        doc = results_doc()
        doc["results"]["extra"] = chatty_extra(write_rows(6.5, 1.6, {"supervisord": 5.0}))
        doc["targets"] = evaluate_targets(doc["results"])
        md = render_markdown(doc)
        self.assertIn("| missed by 2.56x |", md)
        self.assertIn("- **a job writing 200 MB of lines under usvc within 1.5x of straight to a file**", md)


def probes_result(plain, probed, jobs=100, interval_s=1):
    return dict(status="ok", jobs=jobs, ready="http://127.0.0.1:8000/", health="tcp:127.0.0.1:8000",
                health_interval_s=interval_s, readiness_gets=jobs, health_connections=2 * jobs,
                plain=dict(median_kib=plain, max_kib=plain + 4), probed=dict(median_kib=probed, max_kib=probed + 4))


class Issue13ProbesVerdict(unittest.TestCase):
    """Health checks move the runner's USS by at most 8 KiB (medians, same run)."""

    def setUp(self):
        self.res = copy.deepcopy(results_doc()["results"])

    def test_met_within_8_kib_missed_beyond(self):
        self.res["probes"] = probes_result(180, 188)
        self.assertEqual(verdicts(self.res)["probes_uss"]["verdict"], "met")
        self.res["probes"] = probes_result(180, 196)
        v = verdicts(self.res)["probes_uss"]
        self.assertEqual(v["verdict"], "missed by 8 KiB")
        self.assertIn("196 KiB with the checks vs 180 KiB without (+16 KiB)", v["measured"])
        self.assertIn("answered 100 readiness requests and took 200 health connections", v["why"])

    def test_other_job_count_or_interval_is_not_judged(self):
        self.res["probes"] = probes_result(180, 240, jobs=3)
        self.assertEqual(verdicts(self.res)["probes_uss"]["verdict"], "n/a")
        self.res["probes"] = probes_result(180, 240, interval_s=10)
        self.assertEqual(verdicts(self.res)["probes_uss"]["verdict"], "n/a")

    def test_not_run_or_failed_is_n_a_and_the_report_says_why(self):
        self.res.pop("probes", None)  # an older document, from before the row
        self.assertEqual(verdicts(self.res)["probes_uss"]["verdict"], "n/a")
        self.res["probes"] = dict(status="error: timed out after 120 s waiting for 100 probed jobs to be ready")
        self.assertEqual(verdicts(self.res)["probes_uss"]["verdict"], "n/a")
        doc = results_doc()
        doc["results"] = self.res
        doc["targets"] = evaluate_targets(self.res)
        self.assertIn("usvc with checks: error: timed out after 120 s", render_markdown(doc))

    def test_both_rows_are_in_the_report(self):
        doc = results_doc()
        doc["results"]["probes"] = probes_result(180, 184)
        doc["targets"] = evaluate_targets(doc["results"])
        md = render_markdown(doc)
        self.assertIn("| plain | 100 | 180 | 184 |", md)
        self.assertIn("health-interval 1 s | 100 | 184 | 188 |", md)


class PeerThatCannotRun(unittest.TestCase):
    """chatty.py's rows for a peer whose binaries are missing say so (and
    start nothing)."""

    def test_rows_carry_the_reason(self):
        import chatty
        from usvc_bench.supervisors import RunitSvlogd

        class Missing(RunitSvlogd):
            binaries = ("no-such-binary-for-usvc-bench",)

        [mem] = chatty.peer_memory(Missing, 3, 30, 120)
        write, cpu = chatty.write_under_peer(Missing, 1000)
        for r in (mem, write, cpu):
            self.assertEqual(r["subject"], "runit + svlogd -tt")
            self.assertIsNone(r["value"])
            self.assertEqual(r["status"], "no-such-binary-for-usvc-bench not installed")


class OnlyPhases(unittest.TestCase):
    def test_every_phase_has_a_distinct_name(self):
        names = [phase_name(p) for p in PHASES]
        self.assertEqual(len(names), len(set(names)))
        self.assertIn("chatty", names)
        self.assertIn("conf_writes", names)
        self.assertIn("health", names)

    def test_only_keeps_the_run_order_and_refuses_unknown_names(self):
        picked = select_phases("chatty,respawn")
        self.assertEqual([phase_name(p) for p in picked], ["respawn", "chatty"])
        self.assertEqual(select_phases(None), PHASES)
        with self.assertRaises(ValueError):
            select_phases("nope")


if __name__ == "__main__":
    unittest.main()

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
from usvc_bench.harness import ModulePhase, Run, run_phases
from usvc_bench.common import median_gap
from usvc_bench.report import render_markdown
from usvc_bench.targets import evaluate_targets, gap_verdict

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
        self.assertNotIn("µs", md)  # no poll figures where the run recorded none

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


if __name__ == "__main__":
    unittest.main()

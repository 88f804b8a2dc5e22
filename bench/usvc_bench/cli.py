"""The command line: flags, the hard time limit, the run of every phase,
and the JSON and Markdown written from it (or, with --report-only, the
Markdown rendered again from a JSON written earlier)."""

import argparse
import datetime
import json
import os
import signal
import sys

from .build import usvc_build
from .common import FULL, REPO, SMOKE, now
from .harness import PHASES, Run, phase_name, run_phases, select_phases
from .install import ensure_peers
from .report import machine_info, render_markdown
from .supervisors import close_all
from .targets import evaluate_targets


# Hard limit of a whole run unless --timeout says otherwise.
TIMEOUT_S = dict(full=1200.0, smoke=120.0)


def parse_args(argv, description=None):
    p = argparse.ArgumentParser(description=description or __doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--usvc", default=os.path.join(REPO, ".build/release/usvc"),
                   help="usvc binary (default .build/release/usvc)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny counts, a few seconds; exit 1 if anything fails")
    p.add_argument("--out", help="write the Markdown report here")
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument("--report-only", metavar="FROM_JSON",
                   help="measure nothing: render the report of the run FROM_JSON holds "
                        "(to --out, and stdout)")
    p.add_argument("--skip-usvc", action="store_true", help="measure the peers only")
    p.add_argument("--skip-peers", action="store_true", help="measure usvc only")
    p.add_argument("--no-install", action="store_true",
                   help="never apt-get missing peers (the default with --smoke)")
    p.add_argument("--install", action="store_true", help="apt-get missing peers even with --smoke")
    for key in FULL:
        if key != "scale":
            p.add_argument("--" + key.replace("_", "-"), type=type(FULL[key]),
                           help=f"override (full {FULL[key]}, smoke {SMOKE[key]})")
    p.add_argument("--scale", help="job counts for `usvc status`, comma-separated "
                   f"(full {','.join(map(str, FULL['scale']))})")
    p.add_argument("--only", metavar="PHASE[,PHASE]",
                   help="run only these phases: " + ", ".join(phase_name(ph) for ph in PHASES))
    p.add_argument("--timeout", type=float,
                   help="hard limit for the whole run, seconds "
                        f"(full {TIMEOUT_S['full']:.0f}, smoke {TIMEOUT_S['smoke']:.0f})")
    args = p.parse_args(argv)
    args.usvc = os.path.abspath(args.usvc)
    cfg = dict(SMOKE if args.smoke else FULL)
    for key in FULL:
        v = getattr(args, key)
        if v is not None:
            cfg[key] = tuple(int(x) for x in v.split(",")) if key == "scale" else v
    try:
        args.phases = select_phases(args.only)
    except ValueError as e:
        p.error(str(e))
    if args.timeout is None:
        args.timeout = TIMEOUT_S["smoke" if args.smoke else "full"]
    return args, cfg


class HardTimeout(BaseException):
    """Raised by SIGALRM/SIGTERM; BaseException so no measurement swallows it."""


def on_signal(signum, _frame):
    raise HardTimeout(f"stopped by {signal.Signals(signum).name}")


def write_report(doc, out):
    md = render_markdown(doc)
    if out:
        with open(out, "w") as f:
            f.write(md.rstrip("\n") + "\n")
    print(md)


def report_only(args):
    with open(args.report_only) as f:
        doc = json.load(f)
    # Targets are verdicts on the figures: computed again, by today's rules.
    doc["targets"] = evaluate_targets(doc["results"])
    write_report(doc, args.out)
    return 0


def main(argv=None, description=None):
    args, cfg = parse_args(sys.argv[1:] if argv is None else argv, description)
    if args.report_only:
        return report_only(args)
    r = Run(args, cfg)
    t_start = now()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    build = None
    # Everything is bounded: a hung supervisor cannot hold the run (or CI).
    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.alarm(int(args.timeout))
    try:
        if not args.skip_peers and (args.install or not (args.smoke or args.no_install)):
            ensure_peers(r)
        if not args.skip_usvc and not os.access(args.usvc, os.X_OK):
            msg = f"usvc not built ({args.usvc} missing)"
            if args.smoke:
                r.error("usvc", msg + "; build it, or pass --skip-usvc")
            else:
                r.log(msg + ": measuring the peers only")
        elif not args.skip_usvc:
            build = usvc_build(args.usvc)
            r.log(f"usvc: {build['version_line']}")
            if build["release"] is None:  # the Swift side and build.VERSION_LINE disagree
                r.error("usvc --version", f"unexpected line: {build['version_line']!r}")
        run_phases(r, args.phases)
    except (HardTimeout, KeyboardInterrupt) as e:
        r.error("run", f"aborted: {e or 'interrupted'}")
    finally:
        signal.alarm(0)
        close_all()
    doc = dict(date=date, mode="smoke" if args.smoke else "full",
               duration_s=round(now() - t_start, 1), machine=machine_info(),
               versions=dict(r.versions), build=build, method=r.method,
               config={k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
               results=r.results, errors=r.errors)
    doc["targets"] = evaluate_targets(r.results)
    if args.json:  # first: the raw figures survive a rendering bug
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    write_report(doc, args.out)
    r.log(f"done in {doc['duration_s']:.0f} s, {len(r.errors)} error(s)")
    return 1 if r.errors else 0

"""Which usvc a run measures: the binary's own `usvc --version` (the commit it
was built from and whether that tree was dirty, recorded at build time by
Plugins/BuildInfo), cross-checked against what git says of the checkout now."""

import re

from .common import REPO, run

# The one line `usvc --version` prints (Sources/usvc/Version.swift).
VERSION_LINE = re.compile(
    r"usvc (?P<release>\S+) \((?:commit (?P<commit>[0-9a-f]{40}), (?P<tree>clean|dirty) tree"
    r"|commit unknown)\)")


def usvc_version_line(exe):
    """`usvc --version`'s line, or why there is none."""
    cp = run([exe, "--version"], check=False)
    line = cp.stdout.decode(errors="replace").strip()
    if cp.returncode != 0 or not line:
        return f"`{exe} --version` failed (exit {cp.returncode})"
    return line


def git_tree():
    """(HEAD commit, dirty) of the checkout, by the same rule as
    scripts/build-info.sh (tracked changes or untracked files not ignored);
    (None, None) when git cannot tell."""
    head = run(["git", "-C", REPO, "rev-parse", "--verify", "HEAD"], check=False)
    status = run(["git", "--no-optional-locks", "-C", REPO, "status", "--porcelain"], check=False)
    if head.returncode != 0 or status.returncode != 0:
        return None, None
    return head.stdout.decode().strip(), bool(status.stdout.strip())


def usvc_build(exe):
    """What the binary says it was built from, and what git says of the tree
    the run is started from, for the report to name and compare."""
    line = usvc_version_line(exe)
    m = VERSION_LINE.fullmatch(line)
    head, dirty = git_tree()
    return dict(exe=exe, version_line=line, release=m and m["release"],
                commit=m and m["commit"], dirty=None if not (m and m["tree"]) else m["tree"] == "dirty",
                git_head=head, git_dirty=dirty)

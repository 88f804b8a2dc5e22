"""Peers from Debian's packages when missing (root + apt-get), never started
through init."""

import os
import shutil

from .common import BenchError, run

PEER_PACKAGES = ["runit", "s6", "supervisor"]
PEER_BINARIES = ["runsv", "s6-supervise", "supervisord"]
POLICY_RC_D = "/usr/sbin/policy-rc.d"


def daemon_pids():
    """Pids of init-style peer daemons running on the machine."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm in ("supervisord", "runsvdir", "s6-svscan", "runsv", "s6-supervise"):
                out.add(int(d))
    return out


def ensure_peers(r):
    """apt-get install the peers that are missing, without touching init."""
    missing = [b for b in PEER_BINARIES if shutil.which(b) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        r.log(f"peers missing ({', '.join(missing)}) and cannot apt-get: their rows say so")
        return
    r.log(f"installing peers ({', '.join(missing)} missing): apt-get install {' '.join(PEER_PACKAGES)}")
    before = daemon_pids()
    # policy-rc.d exiting 101 stops the packages' maintainer scripts from
    # starting supervisord (or anything else) through init: peers are only
    # ever started by hand, below. Removed again if we created it.
    created = not os.path.exists(POLICY_RC_D)
    if created:
        with open(POLICY_RC_D, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(POLICY_RC_D, 0o755)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # --no-install-recommends: runit recommends runit-init, which replaces
    # the machine's init; runit alone only brings runsv/sv.
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + PEER_PACKAGES
    try:
        if run(cmd, timeout=600, check=False, env=env).returncode != 0:
            run(["apt-get", "update", "-q"], timeout=600, env=env)
            run(cmd, timeout=600, env=env)
    except BenchError as e:
        r.error("install peers", e)
    finally:
        if created:
            os.remove(POLICY_RC_D)
    started = daemon_pids() - before
    if started:
        r.error("install peers", f"the install started daemons {sorted(started)}; "
                "stop them before benchmarking")

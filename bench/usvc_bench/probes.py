"""Issue 13's row: what health checks cost a runner. --jobs jobs with an http://
readiness check and a tcp: health check, next to --jobs plain jobs in the same
USVC_HOME, so both medians come from one run (USS does not depend on
neighbours). The checks go to a real listening port (ProbeTarget, in this
process) that counts them, so the row shows they ran."""

import http.server
import os
import shutil
import threading
import time

from .common import JOB_ARGV, BenchError, median, uss_kib, wait_until
from .supervisors import Usvc

PROBED_GROUP = "probed"
# Health checks every second, not the default 10 s: every runner has run its
# check a few times (first use included) before it is measured.
HEALTH_INTERVAL_S = 1
# Health connections per probed job before measuring.
HEALTH_ROUNDS = 2


class ProbeTarget:
    """127.0.0.1:PORT answering every GET with 200 (the readiness check) and
    counting connections (a tcp: health check connects and closes)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.gets = self.connections = 0
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with target.lock:
                    target.gets += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address):
                with target.lock:
                    target.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def counts(self):
        """(readiness GETs, health connections): a GET's connection is not a health check."""
        with self.lock:
            return self.gets, self.connections - self.gets

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def is_ready(u, name):
    """A run is `starting` until its readiness check passes, then `running` (SPEC: Health)."""
    try:
        return u.state(name).get("state") == "running"
    except OSError:  # not written yet
        return False


def runner_uss(u, group, n):
    kib = [uss_kib(u.runner_of(f"{group}-{i + 1}")) for i in range(n)]
    return dict(median_kib=median(kib), max_kib=max(kib))


def phase_probes_memory(r):
    """Runner USS of --jobs probing jobs and of --jobs plain ones."""
    n = r.cfg["jobs"]
    u = r.open(Usvc)
    if u is None:
        r.results["probes"] = dict(status=r.status_of(Usvc))
        return
    target = ProbeTarget()
    ready = f"http://127.0.0.1:{target.port}/"
    health = f"tcp:127.0.0.1:{target.port}"
    r.log(f"probes: {n} plain jobs and {n} with ready {ready}, health {health}")
    try:
        u.start(n, JOB_ARGV)
        # `usvc load`, for health-interval (start has no flag for it).
        groups = os.path.join(u.dir, "probed.conf")
        with open(groups, "w") as f:
            f.write(f'[group "{PROBED_GROUP}"]\n\tcount = {n}\n\tcmd = {shutil.which(JOB_ARGV[0])}\n'
                    f"\targs = {JOB_ARGV[1]}\n\tready = {ready}\n\thealth = {health}\n"
                    f"\thealth-interval = {HEALTH_INTERVAL_S}\n")
        u.cli("load", groups, timeout=300)
        names = [f"{PROBED_GROUP}-{i + 1}" for i in range(n)]
        wait_until(lambda: all(is_ready(u, name) for name in names), 120, f"{n} probed jobs to be ready")
        wait_until(lambda: target.counts()[1] >= HEALTH_ROUNDS * n, 30 + 2 * HEALTH_INTERVAL_S,
                   f"{HEALTH_ROUNDS * n} health checks")
        time.sleep(0.5)  # let the last checks finish
        gets, connections = target.counts()
        r.results["probes"] = dict(
            status="ok", jobs=n, ready=ready, health=health, health_interval_s=HEALTH_INTERVAL_S,
            readiness_gets=gets, health_connections=connections,
            plain=runner_uss(u, u.group, n), probed=runner_uss(u, PROBED_GROUP, n))
    except (BenchError, OSError) as e:
        r.error("probes", e)
        r.results["probes"] = dict(status=f"error: {e}")
    finally:
        r.finish([u])
        target.close()

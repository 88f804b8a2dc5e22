#!/usr/bin/env python3
"""usvc status --hosts against parallel-ssh, pdsh, clush and a sequential ssh loop.

N simulated hosts are ssh aliases (h1..hN) of one loopback sshd whose MaxStartups
is raised (as N machines would each see one connection); each alias logs in as a
plain user (usvcbench: useradd, `usermod -p '*'` so sshd without PAM accepts the
key) with a USVC_HOME of its own (SetEnv) holding 5 jobs. Every tool runs
`usvc status` on all of them with the same ssh config, once without control
masters and once with them (cold: none yet; warm: the second call). sshd's
`Accepted publickey` lines count the new logins of each call; the client CPU is
the children's rusage (a control master left running in the background is not
the caller's child: its CPU is not in the figure).

    python3 bench/fleet.py --usvc .build/debug/usvc --hosts 100
    python3 bench/fleet.py --usvc .build/debug/usvc --smoke      # 3 hosts

As a module: run(usvc_path, hosts=100) -> rows (dicts). Needs root (useradd, sshd).
"""
import argparse
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

USER = "usvcbench"
JOBS_PER_HOST = 5
PARALLEL = 32
PEERS = {"parallel-ssh": "pssh", "pdsh": "pdsh", "clush": "clustershell"}


def log(*args):
    print("fleet:", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_user():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", USER], check=True)
    # A locked account ("!") is refused by sshd without PAM; "*" is no password, not locked.
    subprocess.run(["usermod", "-p", "*", USER], check=True)
    return pwd.getpwnam(USER)


def ensure_peers():
    """The peers on PATH, installing the missing ones with apt; a peer that cannot be had is skipped, said on stderr."""
    missing = [pkg for tool, pkg in PEERS.items() if not shutil.which(tool)]
    if missing:
        log("installing", " ".join(missing))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=120"] + missing,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = {tool: shutil.which(tool) for tool in PEERS}
    for tool, path in found.items():
        if not path:
            log(f"SKIPPED {tool}: not installed and apt could not install {PEERS[tool]}")
    return {tool: path for tool, path in found.items() if path}


class Hosts:
    """The sshd, the aliases, the remote homes with their jobs; torn down by close()."""

    def __init__(self, usvc, count):
        self.count = count
        self.user = ensure_user()
        self.dir = tempfile.mkdtemp(prefix="usvc-fleet-")
        os.chmod(self.dir, 0o755)
        self.names = [f"h{i}" for i in range(1, count + 1)]
        # Binaries the plain user can run.
        self.bin = os.path.join(self.dir, "bin")
        os.mkdir(self.bin, 0o755)
        for name in ("usvc", "usvc-runner"):
            source = os.path.join(os.path.dirname(os.path.abspath(usvc)), name)
            shutil.copy(source, self.bin)
            os.chmod(os.path.join(self.bin, name), 0o755)
        self.usvc = os.path.join(self.bin, "usvc")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{self.dir}/host_key"], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{self.dir}/id"], check=True)
        shutil.copy(f"{self.dir}/id.pub", f"{self.dir}/authorized_keys")
        os.chmod(f"{self.dir}/authorized_keys", 0o644)
        self.port = free_port()
        self.log = f"{self.dir}/sshd.log"
        with open(f"{self.dir}/sshd_config", "w") as f:
            f.write(f"""ListenAddress 127.0.0.1
Port {self.port}
HostKey {self.dir}/host_key
PidFile {self.dir}/sshd.pid
AuthorizedKeysFile {self.dir}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
AcceptEnv USVC_*
MaxStartups {4 * count + 100}:30:{8 * count + 200}
MaxSessions {2 * count + 10}
""")
        os.makedirs("/run/sshd", exist_ok=True)
        subprocess.run(["/usr/sbin/sshd", "-f", f"{self.dir}/sshd_config", "-E", self.log], check=True)
        self.homes = []
        hosts_block = []
        for name in self.names:
            home = os.path.join(self.dir, "home-" + name)
            os.mkdir(home, 0o700)
            os.chown(home, self.user.pw_uid, self.user.pw_gid)
            self.homes.append(home)
            hosts_block.append(f"Host {name}\n    HostName 127.0.0.1\n    Port {self.port}\n    SetEnv USVC_HOME={home}\n")
        common = f"""Host *
    User {USER}
    IdentityFile {self.dir}/id
    IdentitiesOnly yes
    UserKnownHostsFile {self.dir}/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking accept-new
    BatchMode yes
    ConnectTimeout 20
    LogLevel ERROR
"""
        os.mkdir(f"{self.dir}/cm", 0o700)
        mux = f"    ControlMaster auto\n    ControlPersist 60\n    ControlPath {self.dir}/cm/%n\n"
        self.config = {False: f"{self.dir}/ssh_config", True: f"{self.dir}/ssh_config_mux"}
        for muxed, path in self.config.items():
            with open(path, "w") as f:
                f.write("".join(hosts_block) + common + (mux if muxed else ""))
        self.ssh = {}
        for muxed, path in self.config.items():
            wrapper = f"{self.dir}/ssh{'-mux' if muxed else ''}"
            with open(wrapper, "w") as f:
                f.write(f'#!/bin/sh\nexec ssh -F "{path}" "$@"\n')
            os.chmod(wrapper, 0o755)
            self.ssh[muxed] = wrapper
        with open(f"{self.dir}/hostlist", "w") as f:
            f.write("\n".join(self.names) + "\n")
        deadline = time.time() + 20
        while subprocess.run([self.ssh[False], "h1", "true"], stdin=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            if time.time() > deadline:
                raise RuntimeError("cannot log in to the bench sshd: " + open(self.log).read())
            time.sleep(0.1)
        # The jobs, made as the plain user in each home (no ssh: setup is not measured).
        for home in self.homes:
            subprocess.run(["runuser", "-u", USER, "--", "env", f"USVC_HOME={home}", "PATH=/usr/bin:/bin",
                            self.usvc, "start", "-n", str(JOBS_PER_HOST), "job", "sleep", "100000"],
                           check=True, stdout=subprocess.DEVNULL, cwd="/")

    def logins(self):
        with open(self.log, errors="replace") as f:
            return f.read().count("Accepted publickey")

    def drop_masters(self):
        """Ends every control master of ours (by pid: their command lines name our directory)."""
        for pid in self.our_pids(lambda cmd, env: "[mux]" in cmd and self.dir in cmd):
            os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 5
        while self.our_pids(lambda cmd, env: "[mux]" in cmd and self.dir in cmd) and time.time() < deadline:
            time.sleep(0.05)
        for entry in os.listdir(f"{self.dir}/cm"):
            os.unlink(f"{self.dir}/cm/{entry}")
        shutil.rmtree(f"{self.dir}/local", ignore_errors=True)

    def our_pids(self, match):
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmd = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
                env = open(f"/proc/{entry}/environ", "rb").read().decode(errors="replace")
            except OSError:
                continue
            if match(cmd, env):
                pids.append(int(entry))
        return pids

    def close(self):
        self.drop_masters()
        for home in self.homes:
            subprocess.run(["runuser", "-u", USER, "--", "tmux", "-S", f"{home}/tmux.sock", "kill-server"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid in self.our_pids(lambda cmd, env: f"USVC_HOME={self.dir}" in env or self.dir in cmd):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.kill(int(open(f"{self.dir}/sshd.pid").read()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def masters_alive(hosts):
    """Control masters of ours running now (their command lines name our directory)."""
    return len(hosts.our_pids(lambda cmd, env: "[mux]" in cmd and hosts.dir in cmd))


def timed(argv, env, hosts, expect_lines):
    """Runs one call; wall seconds, client CPU ms per host (children's rusage), new sshd logins, lines."""
    before_logins = hosts.logins()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd="/", timeout=600)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000 / hosts.count
    time.sleep(0.2)  # sshd writes its log line just after the login
    # A status line of a job names its group ("job"); every tool prints them, decorated its own way.
    lines = sum(1 for line in result.stdout.decode(errors="replace").splitlines() if "  job-" in line)
    return {"wall_s": round(wall, 3), "cpu_ms_per_host": round(cpu, 1), "new_logins": hosts.logins() - before_logins,
            "masters_alive": masters_alive(hosts),
            "job_lines": lines, "ok": lines == expect_lines, "exit": result.returncode,
            "stderr": result.stderr.decode(errors="replace")[-300:] if lines != expect_lines else "-"}


def commands(tool, path, hosts, muxed):
    """argv and environment of one tool running `usvc status` on every host with this ssh config."""
    env = dict(os.environ)
    config = hosts.config[muxed]
    remote = [hosts.usvc, "status"]
    if tool == "usvc":
        os.makedirs(f"{hosts.dir}/local", 0o700, exist_ok=True)
        env.update(USVC_SSH=hosts.ssh[False], USVC_REMOTE_COMMAND=hosts.usvc, USVC_HOME=f"{hosts.dir}/local",
                   USVC_SSH_MUX="yes" if muxed else "no")
        return [path, "status", "--hosts-file", f"{hosts.dir}/hostlist", "--parallel", str(PARALLEL)], env
    if tool == "parallel-ssh":
        return [path, "-h", f"{hosts.dir}/hostlist", "-p", str(PARALLEL), "-t", "60", "-i", "-x", f"-F {config}"] + remote, env
    if tool == "pdsh":
        env.update(PDSH_RCMD_TYPE="ssh", PDSH_SSH_ARGS=f"-F {config} -2 -a -x %h")
        return [path, "-R", "ssh", "-f", str(PARALLEL), "-w", ",".join(hosts.names)] + remote, env
    if tool == "clush":
        return [path, "-f", str(PARALLEL), "-o", f"-F {config}", "-w", ",".join(hosts.names)] + remote, env
    if tool == "ssh loop":
        script = 'for h in "$@"; do ssh -F "%s" "$h" %s status; done' % (config, hosts.usvc)
        return ["/bin/sh", "-c", script, "sh"] + hosts.names, env
    raise ValueError(tool)


def median_row(runs):
    """The run of median wall time (its figures), every run's wall time beside it."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    median = ordered[len(ordered) // 2]
    keys = ["wall_s", "cpu_ms_per_host", "new_logins", "masters_alive", "job_lines", "exit"]
    row = {key: median[key] for key in keys}
    row["walls"] = " ".join(f"{r['wall_s']:.3f}" for r in runs)
    row["ok"] = all(r["ok"] for r in runs)
    return row


def run(usvc_path, hosts=100, repeat=3, smoke=False):
    """Every tool, without and with control masters (cold, then warm), each call
    `repeat` times (the median's row is kept); a list of row dicts. `smoke`: 3
    hosts, one call each. Not root: no rows, said on stderr (useradd, sshd)."""
    if smoke:
        hosts, repeat = 3, 1
    if os.geteuid() != 0:
        log("SKIPPED: needs root (useradd for the plain remote user, sshd)")
        return []
    peers = ensure_peers()
    fleet = Hosts(usvc_path, hosts)
    rows = []
    try:
        expect = hosts * JOBS_PER_HOST
        tools = [("usvc", os.path.abspath(usvc_path))] + list(peers.items()) + [("ssh loop", "ssh")]
        # Round-robin: repeat r of every tool before repeat r+1 of any, so a
        # change in the machine's load (2 shared cores) falls on all tools alike.
        # One call of each first, not recorded: the first logins after the
        # setup (75+ fresh tmux servers, cold page cache) would weigh on
        # whichever tool came first. Then each round starts at another tool.
        for tool, path in tools:
            argv, env = commands(tool, path, fleet, False)
            timed(argv, env, fleet, expect)
        measured = {}
        for round_index in range(repeat):
            shift = round_index % len(tools)
            for tool, path in tools[shift:] + tools[:shift]:
                for muxed in (False, True):
                    # Cold: no master of any tool left; warm: the same call again at once.
                    fleet.drop_masters()
                    for call in (["cold", "warm"] if muxed else ["plain"]):
                        argv, env = commands(tool, path, fleet, muxed)
                        measured.setdefault((tool, muxed, call), []).append(timed(argv, env, fleet, expect))
        order = [(tool, muxed, call) for tool, _ in tools for muxed in (False, True)
                 for call in (["cold", "warm"] if muxed else ["plain"])]
        for tool, muxed, call in order:
            runs = measured[(tool, muxed, call)]
            row = {"tool": tool, "masters": "yes" if muxed else "no", "call": call, "hosts": hosts}
            row.update(median_row(runs))
            rows.append(row)
            log(f"{tool:13} masters={row['masters']:3} {call:5} {row['wall_s']:7.3f} s (of {row['walls']})  "
                f"{row['cpu_ms_per_host']:6.1f} ms CPU/host  new logins {row['new_logins']:4}  "
                f"masters alive {row['masters_alive']:4}  job lines {row['job_lines']}/{expect}"
                + ("" if row["ok"] else "  WRONG " + " | ".join(r["stderr"] for r in runs if not r["ok"])))
    finally:
        fleet.close()
    return rows


def report(rows):
    """The rows as a Markdown table, with the computed verdicts the issue asks for."""
    out = ["| tool | control masters | call | hosts | wall s (median) | runs | client CPU ms/host | new logins | masters alive after | job lines ok |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        walls = r["walls"]
        out.append(f"| {r['tool']} | {r['masters']} | {r['call']} | {r['hosts']} | {r['wall_s']:.3f} | {walls} | "
                   f"{r['cpu_ms_per_host']:.1f} | {r['new_logins']} | {r['masters_alive']} | {'yes' if r['ok'] else 'NO'} |")

    def pick(tool, masters, call):
        return next((r for r in rows if r["tool"] == tool and r["masters"] == masters and r["call"] == call), None)

    warm = pick("usvc", "yes", "warm")
    cold = pick("usvc", "yes", "cold")
    peers_warm = [r for r in rows if r["tool"] != "usvc" and r["call"] == "warm" and r["ok"]]
    peers_cold = [r for r in rows if r["tool"] != "usvc" and r["call"] in ("cold", "plain") and r["ok"]]
    if warm:
        out.append("")
        out.append(f"- usvc warm: {warm['wall_s']:.3f} s for {warm['hosts']} hosts through {warm['masters_alive']} control masters, "
                   f"{warm['new_logins']} new logins ({'no new connection' if warm['new_logins'] == 0 else 'NEW CONNECTIONS'})")
        if peers_warm:
            best = min(peers_warm, key=lambda r: r["wall_s"])
            verdict = "faster" if warm["wall_s"] < best["wall_s"] else "NOT faster"
            out.append(f"- fastest peer with control masters (warm): {best['tool']} {best['wall_s']:.3f} s: usvc is {verdict}")
    if cold and peers_cold:
        best = min(peers_cold, key=lambda r: r["wall_s"])
        verdict = "no slower" if cold["wall_s"] <= best["wall_s"] else "SLOWER"
        out.append(f"- usvc cold {cold['wall_s']:.3f} s vs fastest peer cold {best['tool']} ({best['masters']} masters) "
                   f"{best['wall_s']:.3f} s: {verdict}")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--usvc", required=True, help="the usvc binary (usvc-runner beside it)")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="calls per row; the median is kept (default 3)")
    parser.add_argument("--smoke", action="store_true", help="3 hosts, one call per row, to check the bench works")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("fleet.py: needs root (useradd, sshd)")
    rows = run(args.usvc, args.hosts, args.repeat, smoke=args.smoke)
    print(report(rows))


if __name__ == "__main__":
    main()

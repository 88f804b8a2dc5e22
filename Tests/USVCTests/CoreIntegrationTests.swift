import Foundation
import Testing

@testable import USVCCore
import USVCSys

/// The core commands, driving the real usvc binary against a real tmux server
/// and real processes in a temporary USVC_HOME.
@Suite("core commands, end to end")
struct CoreIntegrationTests {
  static let hostileArguments = [
    "plain", "two words", "", " leading and trailing ", "\"double\"", "'single'", "back\\slash",
    "ends with;", ";", "semi;colon", "#hash", "#{pane_id}", "$(touch /tmp/usvc-pwned)", "`id`",
    "new\nline", "tab\there", "-leading-dash", "--", "*", "~", "ünïcødé ✓", "a=b", "\\n",
  ]

  @Test("hostile arguments reach the program exactly, and the conf reads back the same with git")
  func hostileArguments() throws {
    let t = try TestHome()
    let out = t.file("argv")
    let dump = try t.script("dump", "for a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$OUT.tmp\"; mv \"$OUT.tmp\" \"$OUT\"; exec sleep 1000")
    let started = try t.usvc(["start", "-e", "OUT=\(out)", "args", dump] + Self.hostileArguments)
    #expect(started.status == 0, "\(started.stderr)")
    #expect(started.lines == ["started args-1"])
    #expect(eventually { FileManager.default.fileExists(atPath: out) })
    let received = try Data(contentsOf: URL(fileURLWithPath: out)).split(separator: 0, omittingEmptySubsequences: false)
      .dropLast().map { String(decoding: $0, as: UTF8.self) }
    #expect(received == Self.hostileArguments)
    #expect(!FileManager.default.fileExists(atPath: "/tmp/usvc-pwned"))
    let git = try TestHome.run(
      ["git", "config", "-z", "-f", t.home + "/jobs/args-1.conf", "--get-all", "job.args"], environment: t.environment)
    #expect(git.status == 0)
    #expect(git.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init) == Self.hostileArguments)
    // One line per value, control characters escaped.
    #expect(try t.ok("conf", "args-1", "args").stdout == Self.hostileArguments.map(\.visible).joined(separator: "\n") + "\n")
  }

  @Test("the job gets the caller's environment plus -e and USVC_*, the -C directory, and a terminal")
  func environmentDirectoryTerminal() throws {
    let t = try TestHome()
    let out = t.file("env")
    let work = t.file("work dir")
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    t.environment["FROM_CALLER"] = "caller value"
    let probe = try t.script("probe", """
      { echo "pwd=$(pwd)"; echo "caller=$FROM_CALLER"; echo "extra=$EXTRA"; echo "job=$USVC_JOB"; echo "group=$USVC_GROUP"; echo "home=$USVC_HOME"
        if [ -t 0 ] && [ -t 2 ]; then echo tty=yes; else echo tty=no; fi; } > "\(out).tmp"; mv "\(out).tmp" "\(out)"; exec sleep 1000
      """)
    try t.ok("start", "-C", work, "-e", "EXTRA=x y=z", "probe", probe)
    #expect(eventually { FileManager.default.fileExists(atPath: out) })
    let lines = t.read(out)?.split(separator: "\n").map(String.init) ?? []
    #expect(lines == ["pwd=\(work)", "caller=caller value", "extra=x y=z", "job=probe-1", "group=probe", "home=\(t.home)", "tty=yes"])
  }

  @Test("groups name jobs GROUP-N with the lowest free N, listed in natural order")
  func groupsAndNaturalOrder() throws {
    let t = try TestHome()
    #expect(try t.ok("start", "-n", "11", "web", "sleep", "1000").lines == (1...11).map { "started web-\($0)" })
    try t.ok("start", "db", "sleep", "1000")
    #expect(try t.ok("jobs").lines == ["db-1"] + (1...11).map { "web-\($0)" })
    try t.ok("rm", "web-2", "web-10")
    #expect(try t.ok("start", "-n", "3", "web", "sleep", "1000").lines == ["started web-2", "started web-10", "started web-12"])
    #expect(try t.ok("jobs", "web-3", "db").lines == ["db-1", "web-3"])
    #expect(try t.ok("pidof", "web").lines.count == 12)
    let missing = try t.usvc("jobs", "nope")
    #expect(missing.status == 1)
    #expect(missing.stderr == "usvc: no job or group named 'nope'\n")
  }

  @Test("a crashed job is restarted with a new pid and its restart counter grows")
  func crashRestarts() throws {
    let t = try TestHome()
    try t.ok("start", "crash", "sleep", "1000")
    try t.ok("conf", "crash-1", "stable-after", "0")
    try t.ok("restart", "crash-1")
    let first = try #require(try t.pid("crash-1"))
    let restartsBefore = try t.view("crash-1").run.restarts
    kill(first, SIGKILL)
    #expect(try eventually { try t.pid("crash-1").map { $0 != first } ?? false })
    let view = try t.view("crash-1")
    #expect(view.run.restarts == restartsBefore + 1)
    #expect(view.run.lastExit == "SIGKILL")
    let cmdline = try String(contentsOfFile: "/proc/\(view.pid!)/cmdline", encoding: .utf8)
    #expect(cmdline.hasPrefix("/usr/bin/sleep\0") || cmdline.hasPrefix("/bin/sleep\0"))
    let status = try t.ok("status", "crash-1").lines
    #expect(status.count == 2)
    #expect(status[1].contains("running") && status[1].contains("exit SIGKILL") && status[1].contains("restarts \(restartsBefore + 1)"))
  }

  @Test("quick deaths wait 1, 2, 4 s (state waiting), never a hot loop")
  func backoff() throws {
    let t = try TestHome()
    try t.ok("start", "quick", "false")
    #expect(try eventually { try t.state("quick-1") == .waiting })
    // Polled: a status taken just as the 1 s wait ends sees the short run.
    #expect(try eventually {
      let status = try t.usvc("status", "quick").lines.dropFirst().first ?? ""
      return status.contains("waiting") && status.contains("pid -") && status.contains("exit 1")
    })
    #expect(try eventually(within: 20) { try t.view("quick-1").run.runs >= 4 })
    // The delays between starts, from the events: 1 s, 2 s, 4 s.
    let events = try #require(t.read(t.home + "/events.log")).split(separator: "\n").filter { $0.contains("\tquick-1\twaiting\t") }
    #expect(events.prefix(3).map { $0.split(separator: "\t")[3].split(separator: " ")[2] } == ["1s", "2s", "4s"])
    let runs = try t.view("quick-1").run.runs
    #expect(runs <= 5, "a hot loop would have run it far more often: \(runs)")
    #expect(try t.view("quick-1").run.failures == runs)
  }

  @Test("--once runs the program once: it ends as exited")
  func once() throws {
    let t = try TestHome()
    let out = try t.ok("start", "--once", "one", "true")
    #expect(out.lines == ["started one-1"])
    #expect(try eventually { try t.state("one-1") == .exited })
    #expect(try t.view("one-1").run.runs == 1)
    #expect(try t.view("one-1").run.lastExit == "0")
  }

  @Test("stop ends a whole tree, even a double-forked grandchild that ignores SIGTERM")
  func stopTree() throws {
    let t = try TestHome()
    let tree = try t.script("tree", """
      trap '' TERM HUP
      ( trap '' TERM HUP; setsid sh -c 'trap "" TERM HUP; exec sleep 1001' & ) &
      sleep 1002 &
      while :; do sleep 1; done
      """)
    try t.ok("start", "tree", tree)
    try t.ok("conf", "tree-1", "stop-timeout", "1")
    // The conf applies at the next start: SIGKILL the tree, the runner starts it again.
    let first = try #require(try t.pid("tree-1"))
    try t.ok("kill", "-s", "KILL", "tree-1")
    #expect(try eventually { try t.pid("tree-1").map { $0 != first } ?? false })
    #expect(eventually { t.processes(of: "tree-1").count >= 4 })
    let stopped = try t.ok("stop", "tree")
    #expect(stopped.lines == ["stopped tree-1"])
    #expect(t.processes(of: "tree-1").isEmpty)
    #expect(try t.state("tree-1") == .stopped)
    #expect(try t.ok("conf", "tree-1", "desired").stdout == "stopped\n")
    // Stopping a stopped job is not an error.
    #expect(try t.usvc("stop", "tree-1").status == 0)
  }

  @Test("a changed conf (args, env, directory) applies when the same runner starts the next run")
  func confAppliesAtNextRun() throws {
    let t = try TestHome()
    let out = t.file("seen")
    let job = try t.script("show", "echo \"$* V=$V $(pwd)\" >> \"\(out)\"; exec sleep 1000")
    try t.ok("start", "-C", t.root, "-e", "V=one", "nx", job, "first")
    #expect(eventually { t.read(out) != nil })
    let runner = try t.view("nx-1").runner
    try t.ok("conf", "nx-1", "args", "second", "and more")
    try t.ok("conf", "nx-1", "env", "V=two")
    try t.ok("conf", "nx-1", "cwd", "/tmp")
    try t.ok("kill", "-s", "KILL", "nx-1")
    #expect(eventually { (t.read(out) ?? "").split(separator: "\n").count == 2 })
    #expect(t.read(out) == "first V=one \(t.root)\nsecond and more V=two /tmp\n")
    #expect(try t.view("nx-1").runner == runner)
  }

  @Test("restart of a group changes every pid")
  func restartGroup() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "3", "grp", "sleep", "1000")
    let before = Set(try t.ok("pidof", "grp").lines)
    #expect(before.count == 3)
    #expect(try t.ok("restart", "grp").lines == ["started grp-1", "started grp-2", "started grp-3"])
    let after = Set(try t.ok("pidof", "grp").lines)
    #expect(after.count == 3)
    #expect(before.isDisjoint(with: after))
  }

  @Test("the log keeps every line across 50 restarts and a rotation")
  func logsAcrossRestarts() throws {
    let t = try TestHome()
    let counter = t.file("counter")
    // 50 runs of about 130 bytes (with usvc's lines): one rotation at least.
    let padding = String(repeating: ".", count: 80)
    let job = try t.script("count", """
      [ -e "\(t.file("armed"))" ] || exec sleep 1000
      n=$(cat "\(counter)" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "\(counter)"
      echo "line $n \(padding)"
      [ $n -ge 50 ] && exec sleep 1000
      exit 3
      """)
    // Counting begins with the restart, after the confs: no run is cut short by them.
    try t.ok("start", "--restart", "on-failure", "logged", job)
    try t.ok("conf", "logged-1", "stable-after", "0")
    try t.ok("conf", "logged-1", "log-max-bytes", "4096")
    _ = FileManager.default.createFile(atPath: t.file("armed"), contents: nil)
    try t.ok("restart", "logged-1")
    #expect(eventually(within: 20) { t.read(counter) == "50\n" })
    #expect(try eventually { try t.state("logged-1") == .running })
    // The runner may still be copying the last line to the log.
    #expect(try eventually { try t.usvc("logs", "logged-1", "-n", "1").lines == ["line 50 \(padding)"] })
    #expect(t.rotatedLogs(of: "logged-1").first == 1)
    let all = String(decoding: t.wholeLog(of: "logged-1"), as: UTF8.self)
    let lines: [String] = all.split(separator: "\n").filter { $0.hasPrefix("line ") }.map(String.init)
    let expected: [String] = (1...50).map { "line \($0) \(padding)" }
    #expect(lines == expected)
    #expect(all.split(separator: "\n").allSatisfy { $0.hasPrefix("line ") || $0.hasPrefix("[usvc] ") })
    let tail = try t.ok("logs", "logged-1", "-n", "2").lines
    #expect(tail == ["[usvc] started pid \(try t.pid("logged-1")!)", "line 50 \(padding)"])
  }

  @Test("kill -s HUP reaches the job, which keeps running")
  func killHup() throws {
    let t = try TestHome()
    let out = t.file("hup.out")
    let ready = t.file("ready")
    let job = try t.script("hup", "trap 'echo got-hup >> \"\(out)\"' HUP; touch \"\(ready)\"; while :; do sleep 0.1; done")
    try t.ok("start", "hupper", job)
    #expect(eventually { FileManager.default.fileExists(atPath: ready) })
    let pid = try t.pid("hupper-1")
    #expect(try t.ok("kill", "-s", "SIGHUP", "hupper").lines == ["sent SIGHUP to hupper-1"])
    #expect(eventually { t.read(out) == "got-hup\n" }, "\(t.read(out) ?? "nothing") \(t.read(t.home + "/logs/hupper-1.log") ?? "")")
    #expect(try t.pid("hupper-1") == pid)
    let bad = try t.usvc("kill", "-s", "NOPE", "hupper")
    #expect(bad.status == 1 && bad.stderr == "usvc: unknown signal 'NOPE'\n")
  }

  @Test("rm stops the jobs and removes window, conf and state, but keeps the log")
  func remove() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "2", "gone", "sleep", "1000")
    #expect(try t.ok("rm", "gone-1").lines == ["removed gone-1"])
    #expect(t.processes(of: "gone-1").isEmpty)
    #expect(try t.ok("jobs").lines == ["gone-2"])
    for path in ["/jobs/gone-1.conf", "/run/gone-1.state", "/run/gone-1.spec"] {
      #expect(!FileManager.default.fileExists(atPath: t.home + path))
    }
    #expect(FileManager.default.fileExists(atPath: t.home + "/logs/gone-1.log"))
    #expect(try t.tmux("list-windows", "-t", "=usvc", "-F", "#{window_name}").stdout == "usvc\ngone-2\n")
  }

  @Test("bad commands, names and options leave nothing behind", arguments: [
    (["start", "web", "/nonexistent/prog"], "usvc: /nonexistent/prog: No such file or directory"),
    (["start", "web", "no-such-command-xyz"], "usvc: no-such-command-xyz: command not found"),
    (["start", "web", "/tmp"], "usvc: /tmp: is a directory"),
    (["start", "web", "/etc/passwd"], "usvc: /etc/passwd: Permission denied (not executable)"),
    // Executable here, but not a program: exec fails.
    (["start", "web", "/etc/hostname"], "usvc: cannot start web-1: /etc/hostname: Exec format error"),
    (["start", "Web", "true"], "usvc: bad group name 'Web': it must start with a letter a-z"),
    (["start", "all", "true"], "usvc: bad group name 'all': it is reserved"),
    (["start", "a/b", "true"], "usvc: bad group name 'a/b': only a-z, 0-9 and - are allowed"),
    (["start", "../x", "true"], "usvc: bad group name '../x': it must start with a letter a-z"),
    (["start", "-n", "0", "web", "true"], "usvc: bad value for -n: '0': expected 1 to 1000 jobs"),
    (["start", "web"], "usvc: missing COMMAND: usvc start GROUP COMMAND [ARG…]"),
    (["start", "-C", "/nonexistent", "web", "true"], "usvc: /nonexistent: not a directory"),
    (["start", "-e", "NOEQUALS", "web", "true"], "usvc: bad environment setting 'NOEQUALS': expected KEY=VALUE"),
    (["start", "--restart", "sometimes", "web", "true"],
     "usvc: The value 'sometimes' is invalid for '--restart <restart>'. Please provide one of 'always', 'on-failure' or 'never'."),
    (["help", "nope"], "usvc: no command named 'nope': see 'usvc help'"),
    (["stop", "web\nx"], "usvc: no job or group named 'web\\nx'"),
    (["kill", "-s", "RTMIN+99", "web"], "usvc: unknown signal 'RTMIN+99'"),
    (["start", "web", "true"] + TooMany.words, TooMany.message("job.args")),
    (["start", "-n", "2", "web", "sh", "-c", "exit 0"] + TooMany.wordsButTwo, TooMany.message("job.args")),
    (["start"] + TooMany.options + ["web", "true"], TooMany.optionsMessage),
  ])
  func refusals(arguments: [String], message: String) throws {
    let t = try TestHome()
    let outcome = try t.usvcUnderLimits(arguments)
    #expect(outcome.status == 1)
    #expect(outcome.stdout == "")
    #expect(outcome.stderr == message + "\n")
    #expect((try? FileManager.default.contentsOfDirectory(atPath: t.home + "/jobs"))?.filter { !$0.hasPrefix(".") } ?? [] == [])
    #expect(!FileManager.default.fileExists(atPath: t.home + "/tmux.sock"))
  }

  @Test("conf values round-trip with git config, and bad keys or values are refused")
  func confRoundTrip() throws {
    let t = try TestHome()
    try t.ok("start", "cf", "sleep", "1000")
    let values = ["a b", "semi;", "#x", "q\"uote", "back\\", "new\nline", "", "ü ✓", " pad ", "cr\rhere", "ends\r", "\u{1b}[1m"]
    try t.ok("conf", "cf-1", "env", "A=1", "B=two words")
    #expect(try t.ok("conf", "cf-1", "env").lines == ["A=1", "B=two words"])
    let set = try t.usvc(["conf", "cf-1", "args"] + values)
    #expect(set.status == 0, "\(set.stderr)")
    let git = try TestHome.run(["git", "config", "-z", "-f", t.home + "/jobs/cf-1.conf", "--get-all", "job.args"], environment: t.environment)
    #expect(git.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init) == values)
    try t.ok("conf", "cf-1", "stop-timeout", "3")
    #expect(try TestHome.run(["git", "config", "-f", t.home + "/jobs/cf-1.conf", "job.stop-timeout"], environment: t.environment).stdout == "3\n")
    for (arguments, message) in [
      (["conf", "cf-1", "stop-timeout", "-5"], "usvc: bad value for job.stop-timeout: '-5': expected a number of seconds, 0 or more"),
      (["conf", "cf-1", "restart", "sometimes"], "usvc: bad value for job.restart: 'sometimes': expected always, on-failure or never"),
      (["conf", "cf-1", "colour", "red"], "usvc: unknown conf key 'colour'"),
      (["conf", "cf-1", "args"] + TooMany.words, TooMany.message("job.args")),
      (["conf", "cf-1", "stop-timeout", "1", "2"], "usvc: job.stop-timeout takes one value"),
      (["conf", "nope-1", "stop-timeout", "1"], "usvc: no job named 'nope-1'"),
    ] {
      let before = t.read(t.home + "/jobs/cf-1.conf")
      let outcome = try t.usvc(arguments)
      #expect(outcome.status == 1)
      #expect(outcome.stderr == message + "\n")
      #expect(t.read(t.home + "/jobs/cf-1.conf") == before)
    }
    try t.ok("conf", "cf-1", "--unset", "stop-timeout")
    #expect(try t.ok("conf", "cf-1", "stop-timeout").stdout == "")
  }

  @Test("a stale libgit2 lock left by a dead writer is cleared, and concurrent writers lose nothing")
  func locks() throws {
    let t = try TestHome()
    try t.ok("start", "lk", "sleep", "1000")
    let conf = t.home + "/jobs/lk-1.conf"
    let lock = conf + ".lock"
    _ = FileManager.default.createFile(atPath: lock, contents: Data("junk".utf8))
    try t.ok("conf", "lk-1", "after-delay", "1")
    #expect(try t.ok("conf", "lk-1", "after-delay").stdout == "1\n")
    #expect(!FileManager.default.fileExists(atPath: lock))
    // A stale lock again, then 12 writers at once, each setting a key of its own
    // after reading the whole conf: each must find the file whole, and every
    // writer's value must be there at the end.
    _ = FileManager.default.createFile(atPath: lock, contents: Data("junk".utf8))
    let distinct: [(key: String, value: String)] = [
      ("stop-timeout", "11"), ("stable-after", "12"), ("backoff-max", "13"), ("after-delay", "14"),
      ("hook-timeout", "15"), ("log-max-bytes", "16000"), ("log-keep", "17"), ("umask", "027"),
      ("stop-signal", "INT"), ("propagate", "true"), ("restart", "on-failure"), ("cwd", "/tmp"),
    ]
    let outcomes = Locked<[Int: (read: Outcome, write: Outcome)]>([:])
    concurrently(distinct.count) { index in
      let read = (try? t.usvc("conf", "lk-1")) ?? Outcome(status: -1, stdout: "", stderr: "cannot run")
      let write = (try? t.usvc("conf", "lk-1", distinct[index].key, distinct[index].value))
        ?? Outcome(status: -1, stdout: "", stderr: "cannot run")
      outcomes.withValue { $0[index] = (read, write) }
    }
    let all = outcomes.value
    #expect(all.count == distinct.count)
    for (index, outcome) in all.sorted(by: { $0.key < $1.key }) {
      #expect(outcome.read.status == 0 && outcome.read.lines.contains("job.name=lk-1"), "reader \(index): \(outcome.read.stderr)")
      #expect(outcome.write.status == 0 && outcome.write.stderr.isEmpty, "writer \(index): \(outcome.write.stderr)")
    }
    // Read back by git itself: each key once, with its writer's value.
    for item in distinct {
      let git = try TestHome.run(["git", "config", "-f", conf, "--get-all", "job." + item.key], environment: t.environment)
      #expect(git.lines == [item.value], "job.\(item.key): \(git.stdout)\(git.stderr)")
    }
    #expect(!FileManager.default.fileExists(atPath: lock))
  }

  @Test("attach refuses without a terminal")
  func attachNeedsTerminal() throws {
    let t = try TestHome()
    let outcome = try t.usvc("attach")
    #expect(outcome.status == 1)
    #expect(outcome.stderr == "usvc: attach needs a terminal: standard input is not one\n")
  }

  @Test("status: a system line and one line per job, each starting with the host name")
  func statusLines() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "2", "st", "sleep", "1000")
    try t.ok("start", "--once", "done", "true")
    #expect(try eventually { try t.state("done-1") == .exited })
    let lines = try t.ok("status").lines
    let host = hostName()
    #expect(lines.count == 4)
    #expect(lines.allSatisfy { $0.hasPrefix(host + "  ") })
    #expect(lines[0].contains("  system  up ") && lines[0].contains("  jobs 3: 2 running, 1 exited"))
    let fields = lines[2].components(separatedBy: "  ").filter { !$0.isEmpty }.map { $0.trimmingCharacters(in: .whitespaces) }
    #expect(fields[1] == "st-1" && fields[2] == "st" && fields[3] == "running")
    #expect(fields[4] == "pid \(try t.pid("st-1")!)")
    #expect(["S", "R"].contains(fields[5]))
    #expect(fields[6].hasPrefix("up ") && fields[7] == "restarts 0" && fields[8] == "exit -")
    #expect(fields[9].hasPrefix("cpu ") && fields[10].hasPrefix("mem ") && fields[11].hasSuffix("sleep 1000"))
    let done = lines[1].components(separatedBy: "  ").filter { !$0.isEmpty }.map { $0.trimmingCharacters(in: .whitespaces) }
    #expect(Array(done[1...5]) == ["done-1", "done", "exited", "pid -", "-"])
    #expect(done[6].hasPrefix("down "))
    #expect(try t.ok("status", "-s").lines.count == 1)
    let json = try t.ok("status", "--json").lines
    #expect(json.count == 1)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json[0].utf8)) as? [String: Any])
    #expect(object["host"] as? String == host)
    #expect((object["jobs"] as? [[String: Any]])?.map { $0["name"] as? String } == ["done-1", "st-1", "st-2"])
  }
}

@Suite("logs, status details, paths")
struct LogsAndStatusDetailTests {
  /// Starts GROUP-1 printing `n 1`, `n 2`, … (with `pause` between lines, or
  /// flat out), restarted once `confs` are set.
  func startCounter(_ t: TestHome, _ group: String, pause: String?, confs: [(key: String, value: String)]) throws {
    let job = try t.script("counter", "i=0; while :; do i=$((i + 1)); echo \"n $i \(Self.padding)\"\(pause.map { "; sleep \($0)" } ?? ""); done")
    try t.ok("start", group, job)
    for conf in confs { try t.ok("conf", "\(group)-1", conf.key, conf.value) }
    try t.ok("restart", "\(group)-1")
  }

  /// After each counter's number: lines of about 100 bytes, so that the
  /// smallest log-max-bytes (4096) rotates often.
  static let padding = String(repeating: ".", count: 90)

  /// The N of every `n N …` line.
  func counted(_ lines: [String]) -> [Int] {
    lines.compactMap { $0.hasPrefix("n ") ? Int($0.dropFirst(2).prefix { $0 != " " }) : nil }
  }

  @Test("logs -f follows a job across log rotation without losing or repeating a line")
  func followAcrossRotation() throws {
    let t = try TestHome()
    try startCounter(t, "fl", pause: "0.005", confs: [("log-max-bytes", "4096")])
    #expect(eventually { !t.rotatedLogs(of: "fl-1").isEmpty })
    let newestBefore = t.rotatedLogs(of: "fl-1").last ?? 0
    let outcome = try TestHome.run(["/usr/bin/timeout", "3", usvcBinary, "logs", "-n", "0", "-f", "fl-1"], environment: t.environment)
    #expect(outcome.status == 124)  // Ended by timeout: -f follows until interrupted.
    let numbers = counted(outcome.lines)
    #expect(numbers.count > 20)
    #expect(numbers == Array((numbers.first ?? 0)...(numbers.last ?? 0)), "a gap or a repeat")
    // The log rotated while it was followed.
    #expect((t.rotatedLogs(of: "fl-1").last ?? 0) > newestBefore)
  }

  @Test("logs -n while the log rotates many times a second: the last lines, consecutive, none twice")
  func tailDuringRotation() throws {
    let t = try TestHome()
    try startCounter(t, "tr", pause: nil, confs: [("log-max-bytes", "4096"), ("log-keep", "40")])
    #expect(eventually { t.rotatedLogs(of: "tr-1").count == 40 })
    for _ in 1...30 {
      // The last line may be one the job is still writing: shown as far as it goes.
      var lines = try t.ok("logs", "tr-1", "-n", "400").lines
      let last = lines.removeLast()
      let numbers = counted(lines)
      #expect(numbers.count == 399 && numbers == Array((numbers.first ?? 0)..<((numbers.first ?? 0) + 399)), "\(numbers)")
      #expect("n \((numbers.last ?? 0) + 1) \(Self.padding)".hasPrefix(last), "\(last) after \(numbers.last ?? 0)")
    }
  }

  @Test("status marks a job whose program file changed since its run began")
  func changedProgram() throws {
    let t = try TestHome()
    let program = try t.script("prog", "exec sleep 1000")
    try t.ok("start", "ch", program)
    #expect(try !t.ok("status", "ch").lines[1].hasSuffix("changed"))
    // A new file in its place, as a deploy does (write, then rename over).
    let replacement = try t.script("prog.new", "exec sleep 1001")
    #expect(rename(replacement, program) == 0)
    #expect(try t.ok("status", "ch").lines[1].hasSuffix("  changed"))
    let json = try t.ok("status", "--json", "ch").stdout
    #expect(json.contains("\"changed\":true"))
    try t.ok("restart", "ch")
    #expect(try !t.ok("status", "ch").lines[1].hasSuffix("changed"))
  }

  @Test("a USVC_HOME too deep for a socket path gets a private socket under /tmp")
  func longHome() throws {
    let t = try TestHome()
    let deep = t.root + "/" + String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 60)
    try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
    t.environment["USVC_HOME"] = deep + "/home"
    defer {
      _ = try? TestHome.run([usvcBinary, "shutdown"], environment: t.environment)
    }
    try t.ok("start", "deep", "sleep", "1000")
    #expect(!FileManager.default.fileExists(atPath: deep + "/home/tmux.sock"))
    let folder = "/tmp/usvc-\(geteuid())"
    var info = stat()
    #expect(lstat(folder, &info) == 0 && info.st_mode & 0o777 == 0o700 && info.st_uid == geteuid())
    let lines = try t.ok("status").lines
    #expect(lines.count == 2 && lines[1].contains("deep-1") && lines[1].contains("running"))
    try t.ok("stop", "all")
  }
}

@Suite("help")
struct HelpTests {
  static let commands = [
    "start", "stop", "restart", "status", "show", "attach", "logs", "kill", "rm", "conf", "jobs", "pidof",
    "events", "save", "load", "check", "resurrect", "shutdown",
  ]

  @Test("usvc --help lists every command")
  func rootHelp() throws {
    let t = try TestHome()
    let help = try t.usvc("--help")
    #expect(help.status == 0)
    #expect(help.stdout.hasPrefix("OVERVIEW: Keeps your programs running, each in its own tmux window, without"))
    for command in Self.commands { #expect(help.stdout.contains("\n  \(command) "), "\(command)") }
  }

  @Test("every command has --help, exit 0, and writes nothing", arguments: commands)
  func commandHelp(command: String) throws {
    let t = try TestHome()
    let help = try t.usvc(command, "--help")
    #expect(help.status == 0)
    #expect(help.stdout.hasPrefix("OVERVIEW: "))
    #expect(help.stdout.contains("USAGE: usvc \(command)"))
    #expect(help.stderr == "")
    #expect(!FileManager.default.fileExists(atPath: t.home + "/tmux.sock"))
  }

  @Test("an unknown command or option is one usvc: line and exit 1")
  func unknown() throws {
    let t = try TestHome()
    let outcome = try t.usvc("frobnicate")
    #expect(outcome.status == 1)
    #expect(outcome.stderr.hasPrefix("usvc: ") && outcome.stderr.split(separator: "\n").count == 1)
    let option = try t.usvc("status", "--frob")
    #expect(option.status == 1)
    #expect(option.stderr == "usvc: Unknown option '--frob'. Did you mean '--json'?\n")
  }
}

import ArgumentParser
import USVCCore

extension USVC {
  struct Conf: PassthroughCommand {
    static let configuration = CommandConfiguration(
      commandName: "conf", abstract: "Print or change a job's conf; changes take effect at its next start.",
      discussion: "No KEY: every key as 'git config --list' prints it. KEY: its values. KEY VALUE…: set it (a list key such as args or env takes every VALUE).")
    @Option(help: "Remove KEY.")
    var unset: String?
    @Argument(help: "The job.")
    var job: String
    @Argument(
      parsing: .captureForPassthrough,
      help: "KEY (with or without 'job.': stop-timeout, args, env, …), then new value(s); or --unset KEY.")
    var keyAndValues: [String] = []

    var passthrough: [String] {
      get { keyAndValues }
      set { keyAndValues = newValue }
    }

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.reading, passthrough: keyAndValues.count) }
      let supervisor = try USVC.supervisor()
      guard supervisor.store.exists(job) else { throw UsvcError.noSuchJob(job) }
      // Values may look like options (-5, --port), so everything after JOB is taken
      // as given; only a leading --unset KEY is usvc's.
      var rest = keyAndValues
      var unset = self.unset
      if rest.first == "--unset" {
        guard rest.count == 2, unset == nil else { throw ValidationError("--unset takes one KEY and nothing else") }
        unset = rest[1]
        rest = []
      }
      let key = rest.first
      let values = Array(rest.dropFirst())
      if let unset {
        guard key == nil else { throw ValidationError("--unset takes one KEY and nothing else") }
        guard let name = ConfKeys.normalize(unset) else { throw UsvcError.unknownKey(unset) }
        try supervisor.changeConf(job, [.unset(name)])
        return
      }
      let conf = try supervisor.store.loadAsGitReads(job)
      guard let key else {
        // Values escaped (`visible`), so that each is one line whatever it holds.
        for entry in conf.entries { output("\(entry.key)=\(entry.value.visible)") }
        return
      }
      guard let name = ConfKeys.normalize(key) else { throw UsvcError.unknownKey(key) }
      let given = values.first == "--" ? Array(values.dropFirst()) : values
      if given.isEmpty {
        for value in conf.values(name) { output(value.visible) }
      } else {
        try supervisor.changeConf(job, [.set(name, given)])
      }
    }
  }
}

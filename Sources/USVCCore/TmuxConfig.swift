import USVCContract
import USVCSys

/// usvc's tmux configuration, written to `USVC_HOME/tmux.conf` when the server
/// starts. Built into the binary so an installed usvc needs no data files.
enum TmuxConfig {
  static let text = #"""
    # usvc's own tmux server: one window per job. Written by usvc; edits are replaced.
    # Window names are job names: never let programs or tmux rename them.
    set -g automatic-rename off
    set -g allow-rename off
    # Scrollback is tmux's main memory cost (~1 KiB a line of 120 characters):
    # sized for a person looking, since the full output is in the job's log.
    # Each job's window gets its own job.scrollback when it opens (Tmux.openWindows).
    set -g history-limit \#(JobSpec.defaultScrollback)
    set -g exit-empty on
    set -g exit-unattached off
    set -g destroy-unattached off
    set -g detach-on-destroy on
    set -g mouse off
    set -g status-left "[usvc] "
    set -g status-left-length 20
    set -g status-right " #{window_name} | stop: usvc stop #{window_name} | detach: C-b d "
    set -g status-right-length 80
    setw -g aggressive-resize on
    # A runner that exits on purpose (0) closes its window. One that was killed
    # (kill -9) leaves its pane, and the hook starts a new runner in it at once,
    # which clears what the old job left and runs it again.
    set -g remain-on-exit failed
    set-hook -g pane-died { if-shell -F "#{pane_dead_signal}" { respawn-pane } }
    # Window 0 shows the board (usvc top), which reads every job each second: it
    # runs only while a client is attached. Focus-in/out reports (ESC [ I, ESC [ O)
    # typed into its pane say when the first client attaches and the last detaches.
    set-hook -g client-attached { send-keys -t =usvc:0 -H 1b 5b 49 }
    set-hook -g client-detached { if-shell -F "#{session_attached}" "" { send-keys -t =usvc:0 -H 1b 5b 4f } }
    # Ctrl-C, Ctrl-\ and Ctrl-Z in an attached window would signal the job: say how to stop it instead.
    bind-key -n C-c display-message "usvc: Ctrl-C is not sent to jobs; stop this one with 'usvc stop #{window_name}', detach with C-b d"
    bind-key -n C-\\ display-message "usvc: Ctrl-\\ is not sent to jobs; stop this one with 'usvc stop #{window_name}'"
    bind-key -n C-z display-message "usvc: Ctrl-Z is not sent to jobs; detach with C-b d"

    """#
}

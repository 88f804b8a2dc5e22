#!/usr/bin/env bash
# The test of `make install` (run by `make test`): installs the debug build into a
# temporary DESTDIR, then checks that every file is there, that the man page and
# the completions cover every command `usvc --help` lists, and that the installed
# usvc runs `usvc jobs` and starts a job with the usvc-runner installed beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(mktemp -d /tmp/usvc-install.XXXXXX)
export USVC_HOME="$root/home"
unset TMUX TMUX_PANE USVC_JOB USVC_GROUP
failures=0
fail() { echo "test-install: FAIL: $*" >&2; failures=$((failures + 1)); }
cleanup() {
  # A failed check may leave the job running.
  [ -x "$prefix/bin/usvc" ] && "$prefix/bin/usvc" shutdown >/dev/null 2>&1 || true
  rm -rf "$root"
}
prefix="$root/dest/opt/usvc"
trap cleanup EXIT

make -s install CONFIG=debug DESTDIR="$root/dest" PREFIX=/opt/usvc >/dev/null
for file in bin/usvc bin/usvc-runner share/man/man1/usvc.1 share/bash-completion/completions/usvc \
  share/zsh/site-functions/_usvc share/fish/vendor_completions.d/usvc.fish; do
  [ -s "$prefix/$file" ] || fail "$file is missing or empty"
done
[ -x "$prefix/bin/usvc" ] && [ -x "$prefix/bin/usvc-runner" ] || fail "the programs are not executable"
# Nothing outside PREFIX (DESTDIR honoured).
outside=$(cd "$root/dest" && find . -mindepth 1 -maxdepth 2 ! -path ./opt ! -path ./opt/usvc)
[ -z "$outside" ] || fail "files outside PREFIX: $outside"

# Every command of the help text is in the man page and in each completion script.
commands=$("$prefix/bin/usvc" --help | sed -n '/^SUBCOMMANDS:/,/^$/p' | awk '/^  [a-z]/ { print $1 }')
[ "$(echo "$commands" | wc -l)" -ge 18 ] || fail "usvc --help lists too few commands: $commands"
grep -q '^\.Dt USVC 1$' "$prefix/share/man/man1/usvc.1" || fail "usvc.1 is not a section 1 man page"
for command in $commands; do
  grep -q "^\.It Em $command\$" "$prefix/share/man/man1/usvc.1" || fail "usvc.1 lacks $command"
  for script in share/bash-completion/completions/usvc share/zsh/site-functions/_usvc share/fish/vendor_completions.d/usvc.fish; do
    grep -qw -- "$command" "$prefix/$script" || fail "$script lacks $command"
  done
done
bash -n "$prefix/share/bash-completion/completions/usvc" || fail "the bash completion does not parse"

# The installed usvc runs, and starts a job with the runner beside it.
out=$("$prefix/bin/usvc" jobs 2>&1) || fail "usvc jobs failed: $out"
[ -z "$out" ] || fail "usvc jobs in an empty home printed: $out"
out=$("$prefix/bin/usvc" start t sleep 1000 2>&1) || fail "usvc start failed: $out"
state=""
for _ in $(seq 100); do
  state=$(sed -n 's/^state=//p' "$USVC_HOME/run/t-1.state" 2>/dev/null || true)
  [ "$state" = running ] && break
  sleep 0.1
done
[ "$state" = running ] || fail "the job is not running (state '$state')"
runner=$(sed -n 's/^runner=//p' "$USVC_HOME/run/t-1.state" 2>/dev/null || true)
exe=$(readlink "/proc/${runner:-0}/exe" || true)
[ "$exe" = "$prefix/bin/usvc-runner" ] || fail "the job's runner is '$exe', not the usvc-runner installed beside usvc"
"$prefix/bin/usvc" shutdown >/dev/null || fail "usvc shutdown failed"

if [ "$failures" -gt 0 ]; then echo "test-install: $failures failures" >&2; exit 1; fi
echo "test-install: make install into a DESTDIR: every file, every command, usvc jobs, a job run by the runner beside usvc: ok"

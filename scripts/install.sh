#!/usr/bin/env bash
# Installs a built usvc under DEST (the Makefile passes $DESTDIR$PREFIX):
#   bin/usvc, bin/usvc-runner            side by side: usvc starts the runner found beside itself
#   share/man/man1/usvc.1                ArgumentParser's generate-manual, from the same help text
#   share/bash-completion/completions/usvc, share/zsh/site-functions/_usvc,
#   share/fish/vendor_completions.d/usvc.fish   from `usvc --generate-completion-script`
# Usage: install.sh BIN_DIR MAN_PAGE DEST
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BIN_DIR MAN_PAGE DEST" >&2; exit 2; }
bin=$1 man=$2 dest=$3
generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT
# Generated first, from the binary about to be installed: nothing is installed if it cannot run.
for shell in bash zsh fish; do
  "$bin/usvc" --generate-completion-script "$shell" > "$generated/$shell"
done
install -d "$dest/bin" "$dest/share/man/man1" "$dest/share/bash-completion/completions" \
  "$dest/share/zsh/site-functions" "$dest/share/fish/vendor_completions.d"
install -m 755 "$bin/usvc" "$bin/usvc-runner" "$dest/bin/"
install -m 644 "$man" "$dest/share/man/man1/usvc.1"
install -m 644 "$generated/bash" "$dest/share/bash-completion/completions/usvc"
install -m 644 "$generated/zsh" "$dest/share/zsh/site-functions/_usvc"
install -m 644 "$generated/fish" "$dest/share/fish/vendor_completions.d/usvc.fish"
echo "installed usvc in $dest"

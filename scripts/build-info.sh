#!/bin/sh
# Writes OUT_DIR/BuildInfo.swift: the commit REPO is checked out at and whether its
# tree differs from it (tracked changes or untracked files not ignored). Run at every
# build by Plugins/BuildInfo; outside a git checkout (or without git) both are nil,
# so `usvc --version` says the commit is unknown. The file is rewritten only when its
# text changes, so an unchanged tree recompiles nothing.
# Usage: build-info.sh REPO OUT_DIR
set -u
repo=$1 out=$2
# safe.directory: a read-only query, also when the clone belongs to another user (CI as root).
git() { command git -c safe.directory="$repo" --no-optional-locks -C "$repo" "$@" 2>/dev/null; }
commit=nil dirty=nil
# The checkout must be REPO itself, not a repository REPO happens to sit inside.
if [ "$(git rev-parse --show-toplevel)" = "$(cd "$repo" && pwd -P)" ] \
  && hash=$(git rev-parse --verify HEAD) && [ "${#hash}" -eq 40 ] && changes=$(git status --porcelain); then
  commit="\"$hash\""
  if [ -n "$changes" ]; then dirty=true; else dirty=false; fi
fi
text="// Generated at build time by scripts/build-info.sh (Plugins/BuildInfo); not in the tree.
/// The commit this usvc was built from, nil when the build was not in a git checkout.
let buildCommit: String? = $commit
/// Whether the tree differed from buildCommit at build time, nil when unknown.
let buildTreeDirty: Bool? = $dirty"
mkdir -p "$out" || exit 1
file="$out/BuildInfo.swift"
[ -f "$file" ] && [ "$(cat "$file")" = "$text" ] && exit 0
printf '%s\n' "$text" > "$file.tmp" && mv "$file.tmp" "$file"

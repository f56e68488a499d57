#!/usr/bin/env bash
# run.sh LABELS CHECKOUTS OUT: runs silentcheck, built from this checkout, on every
# codebase of a label file and scores it, the way the README's figures were made.
#
#   LABELS     a label file (../heldout11.tsv)
#   CHECKOUTS  a directory holding each codebase at its commit in codebases.tsv, as
#              CHECKOUTS/owner+name (git archive of that commit)
#   OUT        where the analyzer's output per codebase, results.tsv (the label rows with
#              verdicts) and outside.txt (findings in no labelled handler) go
#
# Each codebase is analysed as ./... in every module holding a labelled handler (the
# nearest go.mod above its file), with the module proxy (GOFLAGS=-mod=mod, except in a
# workspace, which resolves its own modules). Where codebases.tsv's scope names packages, flags or a go.work, the
# figure was made that way instead; run those by hand and score them with
# `score verdicts`. Then: score summary OUT/results.tsv.
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: run.sh LABELS CHECKOUTS OUT" >&2
  exit 2
fi
labels=$(realpath "$1")
checkouts=$(realpath "$2")
out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(realpath "$out")
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$here/../../../.." && go build -o "$bin/silentcheck" ./cmd/silentcheck && go build -o "$bin/score" ./analysis/silentcheck/corpus/score)

printf 'codebase\tlocation\tfunction\tlabel\tverdict\tfindings (line and message)\n' >"$out/results.tsv"
: >"$out/outside.txt"
for cb in $(awk -F'\t' 'NR > 1 && !seen[$1]++ { print $1 }' "$labels"); do
  dir=$checkouts/${cb/\//+}
  if [ ! -d "$dir" ]; then
    echo "run.sh: no checkout of $cb at $dir" >&2
    exit 1
  fi
  raw=$out/${cb/\//+}.txt
  : >"$raw"
  # The modules holding the labelled handlers: the nearest go.mod above each labelled
  # file (a repository of several services has one per service).
  modules=$(awk -F'\t' -v cb="$cb" 'NR > 1 && $1 == cb { sub(/:[0-9]+$/, "", $2); print $2 }' "$labels" |
    while read -r file; do
      d=$(dirname "$dir/$file")
      while [ "$d" != "$dir" ] && [ ! -f "$d/go.mod" ]; do d=$(dirname "$d"); done
      echo "$d"
    done | sort -u)
  for mod in $modules; do
    rc=0
    # A workspace (go.work) resolves its own modules; -mod=mod is not allowed there.
    flags=-mod=mod
    if [ -n "$(cd "$mod" && go env GOWORK)" ]; then flags=; fi
    (cd "$mod" && GOFLAGS=$flags "$bin/silentcheck" ./... >>"$raw" 2>&1) || rc=$?
    # 0: no finding, 3: findings; anything else means packages did not load.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
      echo "run.sh: $cb: silentcheck exited $rc in ${mod#"$dir"/} (packages that do not load are not analysed; see $raw)" >&2
    fi
  done
  "$bin/score" verdicts -labels "$labels" -codebase "$cb" -root "$dir" <"$raw" >>"$out/results.tsv" 2>>"$out/outside.txt"
done
"$bin/score" summary "$out/results.tsv"

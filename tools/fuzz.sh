#!/usr/bin/env bash
# A longer libFuzzer campaign: tools/fuzz.sh [target|all] [seconds per target]
# New inputs go to ~/.cache/coold-fuzz/<target>; crashes to the current directory.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
seconds=${2:-600}
if [[ "$which" == all ]]; then
  targets=$(bazel query 'attr(tags, "fuzz_target", //fuzz/...)')
else
  targets=//fuzz:$which
fi
for target in $targets; do
  name=${target##*:}
  bazel build --config=fuzz "$target"
  work=~/.cache/coold-fuzz/$name
  mkdir -p "$work"
  echo "fuzz: $name for ${seconds}s (corpus $work + fuzz/corpus/$name)"
  "bazel-bin/fuzz/$name" -max_total_time="$seconds" -print_final_stats=1 "$work" "fuzz/corpus/$name"
done

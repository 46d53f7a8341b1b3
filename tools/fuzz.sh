#!/usr/bin/env bash
# A libFuzzer campaign over the parsers of untrusted bytes:
#
#   tools/fuzz.sh [all|target[,target...]] [seconds per target, default 600]
#   tools/fuzz.sh table      (only rewrites the table from the kept results and the
#                             rows docs/security.md already publishes)
#
# For each target: the fuzzer built under ASan+UBSan (--config=fuzz) runs for the given
# time on its kept corpus (~/.cache/coold-fuzz/<target>) and its seeds (fuzz/corpus/);
# the corpus is then merged (minimised) back into the kept one. Crash reproducers land in
# ~/.cache/coold-fuzz/crashes/<target>/: add each to fuzz/corpus/<target>/ (which
# //fuzz:<target>_regression replays in `bazel test`) once fixed. Then every merged
# corpus runs once through a coverage build (--config=fuzzcov) and llvm-cov reports the
# line coverage of the project's own code. Each target's figures (executions, exec/s,
# libFuzzer's edge count, line coverage, crashes, with the date and the machine's load)
# are kept in ~/.cache/coold-fuzz/results/, so campaigns over parts of the targets (two at
# once on two cores) add up; the table of every target's latest figures is printed and
# written into docs/security.md between the fuzz-campaign markers.
#
# tools/test.sh runs each target for 20 s only; this is the long run.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
seconds=${2:-600}
cache=~/.cache/coold-fuzz
mkdir -p "$cache"
work=$(mktemp -d /tmp/coold-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

results=$cache/results
mkdir -p "$results"
if [[ "$which" == all ]]; then
  mapfile -t targets < <(bazel query 'attr(tags, "fuzz_target", //fuzz/...)' 2>/dev/null)
elif [[ "$which" == table ]]; then
  targets=()
else
  IFS=',' read -r -a names <<<"$which"
  targets=()
  for name in "${names[@]}"; do targets+=("//fuzz:$name"); done
fi
((${#targets[@]})) || [[ "$which" == table ]] || { echo "fuzz: no targets" >&2; exit 1; }
if ((${#targets[@]})); then
echo "fuzz: building ${#targets[@]} target(s) with ASan+UBSan"
bazel build --config=fuzz "${targets[@]}"
mkdir -p "$work/fuzz" "$work/cov"
for target in "${targets[@]}"; do cp "bazel-bin/fuzz/${target##*:}" "$work/fuzz/"; done

rows=()
for target in "${targets[@]}"; do
  name=${target##*:}
  corpus=$cache/$name
  crashes=$work/crashes/$name  # this run's only; kept in $cache/crashes afterwards
  mkdir -p "$corpus" "$crashes" "$cache/crashes/$name"
  echo "fuzz: $name for ${seconds}s ($(cut -d' ' -f1-3 /proc/loadavg) load)"
  status=0
  "$work/fuzz/$name" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$crashes/" \
    "$corpus" "fuzz/corpus/$name" 2>"$work/$name.log" || status=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$work/$name.log" | tail -n 1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$work/$name.log" | tail -n 1)
  edges=$(grep -oE 'cov: [0-9]+' "$work/$name.log" | tail -n 1 | awk '{print $2}')
  found=$(find "$crashes" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  if ((status != 0)); then tail -n 40 "$work/$name.log"; fi
  cp -r "$crashes/." "$cache/crashes/$name/"
  # Minimise: what the run found and the seeds, merged into a fresh kept corpus.
  mkdir -p "$work/merged-$name"
  "$work/fuzz/$name" -merge=1 "$work/merged-$name" "$corpus" "fuzz/corpus/$name" 2>/dev/null >/dev/null || true
  if [[ -n "$(ls -A "$work/merged-$name")" ]]; then
    rm -rf "$corpus"
    mv "$work/merged-$name" "$corpus"
  fi
  rows+=("$name|${execs:-0}|${rate:-0}|${edges:-0}|$found")
done

echo "fuzz: coverage build"
bazel build --config=fuzzcov "${targets[@]}"
for row in "${rows[@]}"; do
  IFS='|' read -r name execs rate edges found <<<"$row"
  bin=bazel-bin/fuzz/$name
  LLVM_PROFILE_FILE="$work/cov/$name.profraw" "$bin" -runs=0 "$cache/$name" >/dev/null 2>&1 || true
  lines=n/a
  if [[ -s $work/cov/$name.profraw ]]; then
    llvm-profdata-14 merge -sparse "$work/cov/$name.profraw" -o "$work/cov/$name.profdata"
    # The project's own code only: not system headers, generated protobuf code or the
    # fuzz harness itself.
    lines=$(llvm-cov-14 report "$bin" -instr-profile="$work/cov/$name.profdata" \
      -ignore-filename-regex='(^/usr/|external/|bazel-out/|\.pb\.|^fuzz/)' 2>/dev/null |
      awk '/^TOTAL/ {print $(NF-3)}')
  fi
  echo "| \`$name\` | $(date -u +%Y-%m-%d) | $seconds | $execs | $rate | $edges | ${lines:-n/a} | $found | $(cut -d' ' -f1 /proc/loadavg) |" >"$results/$name.row"
done
fi  # targets to run

# A target published in docs/security.md whose campaign ran on another machine (no result
# kept here) keeps its published row, so campaigns add up across machines too.
doc=docs/security.md
begin='<!-- fuzz-campaign:begin -->'
end='<!-- fuzz-campaign:end -->'
if [[ -f $doc ]]; then
  while IFS= read -r row; do
    name=$(sed -E 's/^\| `([a-z0-9_]+)`.*/\1/' <<<"$row")
    [[ -e $results/$name.row ]] || echo "$row" >"$results/$name.row"
  done < <(awk -v begin="$begin" -v end="$end" '$0 == begin {on = 1; next} $0 == end {on = 0} on && /^\| `/' "$doc")
fi
table="| target | date | seconds | executions | exec/s | edges | lines covered | crashes | load at end |"$'\n'"|---|---|---:|---:|---:|---:|---:|---:|---:|"
for row in "$results"/*.row; do
  [[ -e $row ]] && table+=$'\n'"$(cat "$row")"
done
echo
echo "$table"

# Into docs/security.md, between the markers (appended with them when missing).
section="$begin"$'\n'"Each target's latest campaign (\`tools/fuzz.sh TARGETS SECONDS\`, $(nproc) CPUs; lines: the project's own code)."$'\n\n'"$table"$'\n'"$end"
touch "$doc"
if grep -qF "$begin" "$doc"; then
  awk -v begin="$begin" -v end="$end" -v section="$section" '
    $0 == begin { print section; skip = 1; next }
    $0 == end { skip = 0; next }
    !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
else
  printf '\n## Fuzzing campaign\n\n%s\n' "$section" >>"$doc"
fi
echo "fuzz: summary written to $doc"
# Any crash fails the campaign.
for row in ${rows[@]+"${rows[@]}"}; do
  IFS='|' read -r name _ _ _ found <<<"$row"
  if ((found > 0)); then echo "fuzz: $name found $found crash(es) in $cache/crashes/$name" >&2; exit 1; fi
done

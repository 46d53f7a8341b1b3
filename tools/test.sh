#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit and integration tests
# (`bazel test //...`, which also replays every fuzz corpus), then each libFuzzer target
# briefly under ASan, then the main job (tools/deploy/deploy.sh --once) from the installed
# packages. Longer campaigns: tools/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
bazel test //... 2>&1 | tee "$log" || status=$?

fuzz_seconds=${FUZZ_SECONDS:-20}
fuzz_passed=0
fuzz_failed=0
if ((status == 0)); then
  for target in $(bazel query 'attr(tags, "fuzz_target", //fuzz/...)' 2>/dev/null); do
    name=${target##*:}
    echo "fuzz: $name for ${fuzz_seconds}s"
    bazel build --config=fuzz "$target"
    corpus=$(mktemp -d)
    cp -r "fuzz/corpus/$name/." "$corpus/"
    if "bazel-bin/fuzz/$name" -max_total_time="$fuzz_seconds" -print_final_stats=1 "$corpus" 2>"$log.fuzz"; then
      fuzz_passed=$((fuzz_passed + 1))
      tail -n 3 "$log.fuzz"
    else
      fuzz_failed=$((fuzz_failed + 1))
      tail -n 60 "$log.fuzz"
    fi
    rm -rf "$corpus" "$log.fuzz"
  done
fi

# Last, the first command's main job from the installed packages, as a new user runs it:
# what works only from Bazel's tree cannot pass here.
deploy_passed=0
deploy_failed=0
if ((status == 0)); then
  echo "deploy: the main job from the installed packages (tools/deploy/deploy.sh --once)"
  if bazel build //packaging:debs &&
     dpkg --force-confold -i bazel-bin/packaging/coold_*.deb bazel-bin/packaging/coolify-broker_*.deb >/dev/null &&
     bash tools/deploy/deploy.sh --once --prefix /; then
    deploy_passed=1
  else
    deploy_failed=1
  fi
fi

passed=$(grep -cE '^//.* PASSED in' "$log" || true)
failed=$(grep -cE '^//.* (FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD)( in|$)' "$log" || true)
passed=$((passed + fuzz_passed + deploy_passed))
failed=$((failed + fuzz_failed + deploy_failed))
if ((status != 0 && failed == 0)); then failed=1; fi
echo "tests: $passed passed, $failed failed"
((status == 0 && failed == 0))

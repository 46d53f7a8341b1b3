#!/bin/bash
# tools/install-host.sh: a dry run prints every step and changes nothing; CPU and package
# manager are detected (arm64 through a uname that says aarch64); an install into a
# scratch root writes the configuration and a 0600 token; a second run changes nothing;
# once the host has its key no token is written again; bad arguments are refused.
set -euo pipefail
script=$(realpath "$1")
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/install-host-test-XXXXXX)
trap 'rm -rf "$work"' EXIT
token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
args=(--broker-url grpcs://broker.example.com:6443/v1/agent --host-id host-10-0-0-5)

echo "== dry run"
out=$(COOLD_ENROLLMENT_TOKEN=$token "$script" "${args[@]}" --dry-run 2>&1) || { echo "$out"; fail "dry run"; }
echo "$out"
grep -q "host host-10-0-0-5, amd64, apt" <<<"$out" || fail "detection"
grep -q "run: apt-get install -y coold" <<<"$out" || fail "package step"
grep -q "COOLD_BROKER_URL=grpcs://broker.example.com:6443/v1/agent" <<<"$out" || fail "broker url step"
grep -q "enrollment-token: written (0600, root)" <<<"$out" || fail "token step"
grep -q "systemctl enable --now coold.service\|systemd is not running here" <<<"$out" || fail "service step"
grep -q "$token" <<<"$out" && fail "the token was printed"
[[ ! -e /etc/coolify/enrollment-token ]] || grep -qv "$token" /etc/coolify/enrollment-token || fail "dry run wrote"

echo "== arm64 and dnf, detected"
mkdir -p "$work/bin"
printf '#!/bin/sh\necho aarch64\n' >"$work/bin/uname"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/dnf"
chmod +x "$work/bin/uname" "$work/bin/dnf"
# A PATH without apt-get: only the shims and the basic tools.
mkdir -p "$work/basic"
for t in sh grep id cat printf mkdir chmod mv install realpath; do ln -sf "$(command -v $t)" "$work/basic/$t"; done
out=$(PATH=$work/bin:$work/basic COOLD_ENROLLMENT_TOKEN=$token sh "$script" "${args[@]}" --dry-run 2>&1) || { echo "$out"; fail "arm64 dry run"; }
grep -q "host host-10-0-0-5, arm64, dnf" <<<"$out" || { echo "$out"; fail "arm64/dnf detection"; }
grep -q "run: dnf install -y coold" <<<"$out" || fail "dnf package step"
printf '#!/bin/sh\necho riscv64\n' >"$work/bin/uname"
out=$(PATH=$work/bin:$work/basic COOLD_ENROLLMENT_TOKEN=$token sh "$script" "${args[@]}" --dry-run 2>&1) && fail "riscv64 accepted"
grep -q "unsupported CPU riscv64" <<<"$out" || fail "riscv64 message"

echo "== into a scratch root"
root=$work/root
COOLD_ENROLLMENT_TOKEN=$token "$script" "${args[@]}" --root "$root"
[[ $(stat -c %a "$root/etc/coolify/enrollment-token") == 600 ]] || fail "token mode"
[[ $(cat "$root/etc/coolify/enrollment-token") == "$token" ]] || fail "token content"
grep -qx "COOLD_BROKER_URL=grpcs://broker.example.com:6443/v1/agent" "$root/etc/coolify/coold.env" || fail "env url"
grep -qx "COOLD_HOST_ID=host-10-0-0-5" "$root/etc/coolify/coold.env" || fail "env host"
before=$(cd "$root" && find . -type f -exec sha256sum {} + | sort)
out=$(COOLD_ENROLLMENT_TOKEN=$token "$script" "${args[@]}" --root "$root")
after=$(cd "$root" && find . -type f -exec sha256sum {} + | sort)
[[ $before == "$after" ]] || fail "second run changed files"
grep -q "already set" <<<"$out" && grep -q "already written" <<<"$out" || fail "second run not idempotent: $out"
[[ $(grep -c '^COOLD_HOST_ID=' "$root/etc/coolify/coold.env") == 1 ]] || fail "duplicated variable"

echo "== enrolled: no token again"
rm "$root/etc/coolify/enrollment-token"
: >"$root/etc/coolify/host.key"
out=$(COOLD_ENROLLMENT_TOKEN=$token "$script" "${args[@]}" --root "$root")
grep -q "enrolled already" <<<"$out" || fail "enrolled host got a token"
[[ ! -e $root/etc/coolify/enrollment-token ]] || fail "token written for an enrolled host"
out=$(COOLD_ENROLLMENT_TOKEN=$token "$script" "${args[@]}" --root "$root" --reenroll)
[[ -e $root/etc/coolify/enrollment-token ]] || fail "--reenroll wrote no token"

echo "== refused"
for bad in "--broker-url http://x --host-id h" "--broker-url grpcs://b --host-id Bad_Host" "--broker-url grpcs://b --host-id h --what"; do
  # shellcheck disable=SC2086
  COOLD_ENROLLMENT_TOKEN=$token "$script" $bad --dry-run >/dev/null 2>&1 && fail "accepted: $bad"
done
COOLD_ENROLLMENT_TOKEN='x y' "$script" "${args[@]}" --dry-run >/dev/null 2>&1 && fail "accepted a bad token"
"$script" "${args[@]}" --root "$work/other" >/dev/null 2>&1 && fail "enrolled without a token"
echo PASS

#!/bin/sh
# Installs coold on this host and points it at the broker, ready to enroll: the target of
# the one-liner the broker returns from POST /v1/hosts/enroll.
#
#   curl -fsSL <installer> | COOLD_ENROLLMENT_TOKEN=<token> sh -s -- \
#     --broker-url grpcs://broker.example.com:6443/v1/agent --host-id host-10-0-0-5
#
# Steps: detect the CPU (amd64, arm64) and the package manager (apt-get, dnf); install the
# coold package (--package FILE: a local .deb/.rpm instead of the configured repository);
# set COOLD_BROKER_URL and COOLD_HOST_ID in /etc/coolify/coold.env; write the one-time
# enrollment token to /etc/coolify/enrollment-token (0600, root) unless this host already
# has its key (/etc/coolify/host.key: enrolled already; --reenroll writes a new token and
# keeps everything else, the key included, which the broker then records anew with the
# new grant); enable and start coold.service. Idempotent: a second run with
# the same arguments changes nothing. Opens no inbound port: coold dials out.
#
#   --dry-run      print every step, change nothing
#   --root DIR     install into DIR (a scratch root: files only, no package manager, no
#                  service start), for tests and image builds
#   --ca-file F    the CA the broker's certificate chains to (copied to broker-ca.pem)
#   --no-package   skip the package step (coold already installed)
set -eu

broker_url= host_id= package= root= dry_run=0 reenroll=0 ca_file= no_package=0
token=${COOLD_ENROLLMENT_TOKEN:-}

die() { echo "install-host: $*" >&2; exit 1; }
step() { echo "install-host: $*"; }
# Runs "$@" unless this is a dry run; prints it either way.
run() {
  step "run: $*"
  [ "$dry_run" = 1 ] || "$@"
}

while [ $# -gt 0 ]; do
  case $1 in
    --broker-url) broker_url=${2:?}; shift 2 ;;
    --host-id) host_id=${2:?}; shift 2 ;;
    --package) package=${2:?}; shift 2 ;;
    --root) root=${2:?}; shift 2 ;;
    --ca-file) ca_file=${2:?}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --reenroll) reenroll=1; shift ;;
    --no-package) no_package=1; shift ;;
    *) die "unknown argument $1" ;;
  esac
done

case $broker_url in
  grpcs://?*) ;;
  *) die "--broker-url must be grpcs://HOST[:PORT][/v1/agent]" ;;
esac
printf '%s' "$host_id" | grep -Eq '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$' ||
  die "--host-id must be 1..64 of [a-z0-9-], not starting or ending with '-'"
if [ -n "$token" ]; then
  printf '%s' "$token" | grep -Eq '^[A-Za-z0-9_-]{16,256}$' || die "COOLD_ENROLLMENT_TOKEN is not an enrollment token"
fi
[ "$dry_run" = 1 ] || [ -n "$root" ] || [ "$(id -u)" = 0 ] || die "run as root (or --dry-run / --root DIR)"

case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported CPU $(uname -m): coold is built for amd64 and arm64" ;;
esac
if command -v apt-get >/dev/null 2>&1; then
  manager=apt
elif command -v dnf >/dev/null 2>&1; then
  manager=dnf
else
  die "neither apt-get nor dnf found"
fi
step "host $host_id, $arch, $manager, broker $broker_url"

etc=$root/etc/coolify
env_file=$etc/coold.env
token_file=$etc/enrollment-token
key_file=$etc/host.key

# 1. The package (with coold.service and its env file).
if [ "$no_package" = 1 ] || [ -n "$root" ]; then
  step "package: skipped"
elif [ "$manager" = apt ]; then
  if [ -n "$package" ]; then run apt-get install -y "$package"; else run apt-get install -y coold; fi
else
  if [ -n "$package" ]; then run dnf install -y "$package"; else run dnf install -y coold; fi
fi

# 2. Configuration: one line per variable, replaced in place, never duplicated.
set_var() {
  name=$1 value=$2
  if [ -f "$env_file" ] && grep -q "^$name=$value\$" "$env_file"; then
    step "$env_file: $name already set"
    return
  fi
  step "$env_file: $name=$value"
  [ "$dry_run" = 1 ] && return
  tmp=$env_file.tmp
  { [ -f "$env_file" ] && grep -v "^$name=" "$env_file" || true; echo "$name=$value"; } >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$env_file"
}
if [ "$dry_run" = 1 ]; then step "mkdir -p $etc (0755)"; else mkdir -p "$etc"; chmod 0755 "$etc"; fi
set_var COOLD_BROKER_URL "$broker_url"
set_var COOLD_HOST_ID "$host_id"
if [ -n "$ca_file" ]; then
  step "$etc/broker-ca.pem: from $ca_file"
  [ "$dry_run" = 1 ] || install -m 0644 "$ca_file" "$etc/broker-ca.pem"
fi

# 3. The enrollment token: only for a host without its key, or one being re-enrolled.
if [ -f "$key_file" ] && [ "$reenroll" = 0 ]; then
  step "$key_file exists: enrolled already, no token written"
elif [ -z "$token" ]; then
  die "COOLD_ENROLLMENT_TOKEN is required to enroll this host"
elif [ -f "$token_file" ] && [ "$(cat "$token_file")" = "$token" ]; then
  step "$token_file: already written"
else
  step "$token_file: written (0600, root)"
  if [ "$dry_run" = 0 ]; then
    # Created 0600 before the token is in it: never readable by others, even briefly.
    (umask 077 && printf '%s\n' "$token" >"$token_file.tmp")
    mv "$token_file.tmp" "$token_file"
  fi
fi

# 4. The service.
if [ -n "$root" ]; then
  step "service: not started (--root)"
elif command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  # --now starts it if it is not running, and leaves a running coold alone.
  run systemctl enable --now coold.service
else
  step "service: systemd is not running here; start coold.service when it is"
fi
step "done"

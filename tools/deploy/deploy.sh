#!/usr/bin/env bash
# The main job: an app deployed end to end on this one machine, driven over the broker's
# Unix socket exactly as central drives it ({"host_id","request_id","command":{...}}).
#
#   deploy.sh [--once] [--prefix DIR]
#
# Everything runs inside a private network namespace this script creates (the host's own
# firewall, routes and Podman storage are never touched): an isolated Podman
# (tests/podman_harness/podman_harness.sh), the broker with a CA, a certificate and a
# host-token key made here, and coold connected to it with a host token, SQLite as its
# endpoint store and namespace `default` with its bridge (coolify0, 10.210.0.1/24) and DNS.
# Binaries come from DIR/usr/sbin, DIR/usr/lib/coold, DIR/usr/bin (default: / when the
# packages are installed, else the staged tree bazel-bin/packaging/stage).
#
# Steps: T0 build a static site from a local git repository (build lane), T3 volume,
# T4-T5 create and start, T6 poll until running and healthy, T7 register the service and
# resolve it with DNS from another container, T8 firewall allow proxy -> app, T9 a
# reverse proxy (nginx from Debian's own package) reloaded by exec, the site fetched
# through it, T10 roll out v2 and retire v1 with a client fetching through the proxy all
# along, M the broker's and coold's /metrics counted what the steps did. One line per step, a summary, then (without --once) everything stays up until
# Ctrl-C. A failing step stops the run with the broker's answer and the logs that explain it.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/../.." && pwd)
once=0
prefix=""
while (($#)); do
  case "$1" in
    --once) once=1 ;;
    --prefix) prefix=$2; shift ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deploy: unknown argument $1 (--once, --prefix DIR)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z $prefix ]]; then
  if dpkg-query -W -f='${Status}' coold 2>/dev/null | grep -q 'install ok installed' &&
     dpkg-query -W -f='${Status}' coolify-broker 2>/dev/null | grep -q 'install ok installed'; then
    prefix=/
  else
    prefix=$repo_root/bazel-bin/packaging/stage
  fi
fi
prefix=${prefix%/}  # "/" becomes "", so the paths shown read /usr/...
coold_bin=$prefix/usr/sbin/coold
broker_bin=$prefix/usr/sbin/coolify-broker
coolctl_bin=$prefix/usr/bin/coolctl
for b in "$coold_bin" "$broker_bin" "$coolctl_bin"; do
  [[ -x $b ]] || { echo "deploy: $b missing (bazel build //packaging:stage, or install the packages)" >&2; exit 2; }
done

# ------------------------------------------------------------------ names and places
id=$$
netns=coold-deploy-$id
# Not under /tmp: a build's sandbox has a private /tmp, and its work directory and the
# storage it builds into must be the ones coold and Podman see.
work=$(mktemp -d /var/tmp/coold-deploy.XXXXXX)
chmod 0755 "$work"
harness=$repo_root/tests/podman_harness/podman_harness.sh
host_id=host-127-0-0-1
zone=coolify.internal
gateway=10.210.0.1
net=coolify-default-mesh
sock=$work/broker.sock
api_port=18443
cache=${XDG_CACHE_HOME:-$HOME/.cache}/coold-deploy
tty=0
[[ -t 1 ]] && tty=1

# nsenter, not `ip netns exec`: that one mounts a fresh /sys, without the cgroup hierarchy
# builds run in.
in_ns() { nsenter --net="/run/netns/$netns" "$@"; }
pod() { in_ns "$harness" podman "$work/podman" "$@"; }

# ------------------------------------------------------------------ output
declare -a summary=()
step_name="" step_start=0 failed_step=""
now_ms() { date +%s%3N; }
begin() {
  step_name=$1
  step_start=$(now_ms)
  if ((tty)); then printf '%-58s ' "$step_name"; fi
}
ok() {
  local ms=$(($(now_ms) - step_start)) note=${1:-}
  local line
  line=$(printf '%-58s ok %6d ms  %s' "$step_name" "$ms" "$note")
  if ((tty)); then printf '\r%s\n' "$line"; else echo "$line"; fi
  summary+=("$(printf '%-58s %8d ms  %s' "$step_name" "$ms" "$note")")
}
# A spinner with the elapsed time while `"$@"` runs (long steps). The command runs in
# this shell, so what it sets stays set; the spinner is the background process.
spin_pid=""
live() {
  if ((tty)); then
    (
      spin='|/-\' i=0
      while :; do
        printf '\r%-58s %s %4ds' "$step_name" "${spin:i++%4:1}" $((($(now_ms) - step_start) / 1000))
        sleep 0.2
      done
    ) &
    spin_pid=$!
  fi
  local rc=0
  "$@" || rc=$?
  if [[ -n $spin_pid ]]; then kill "$spin_pid" 2>/dev/null; wait "$spin_pid" 2>/dev/null || true; spin_pid=""; fi
  return "$rc"
}
# Stops the run: the step, what the broker answered and the log lines that explain it.
fail() {
  failed_step=$step_name
  ((tty)) && printf '\n'
  echo "FAILED: $step_name: $1" >&2
  if [[ -n ${answer:-} ]]; then echo "broker answered ${code:-?}: $answer" >&2; fi
  if [[ -n ${rid:-} ]]; then
    echo "--- log lines of request $rid (coold, broker):" >&2
    grep -h -- "$rid" "$work/coold.log" "$work/broker.log" 2>/dev/null | tail -n 20 >&2 || true
  fi
  if [[ -n ${rid:-} && -d $work/builds/$rid ]]; then
    echo "--- build $rid: what the builder wrote" >&2
    tail -n 15 "$work/builds/$rid"/*.ndjson "$work/builds/$rid"/*.json "$work/builds/$rid"/*.log >&2 2>/dev/null || true
  fi
  if [[ -n ${container:-} && -S $sock ]]; then
    echo "--- $container's own log (containers.logs):" >&2
    curl -s --max-time 10 --unix-socket "$sock" http://broker/v1/coold/dispatch -d "$(jq -cn --arg h "$host_id" \
      --arg r "deploy-$id-logs" --arg c "$container" '{host_id:$h, request_id:$r,
      command:{type:"containers.logs", id:$c, tail:20}}')" | jq -r '.data.stdout, .data.stderr' >&2 || true
  fi
  echo "--- coold log (last 25 lines):" >&2
  grep -v "status=200" "$work/coold.log" 2>/dev/null | tail -n 25 >&2 || true
  echo "--- broker log (last 10 lines):" >&2
  tail -n 10 "$work/broker.log" >&2 2>/dev/null || true
  exit 1
}

# ------------------------------------------------------------------ teardown
teardown() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n ${spin_pid:-} ]]; then kill "$spin_pid" 2>/dev/null; fi
  if [[ -n ${client_pid:-} ]]; then kill "$client_pid" 2>/dev/null; wait "$client_pid" 2>/dev/null; fi
  if [[ -n ${coold_pid:-} ]]; then kill -TERM "$coold_pid" 2>/dev/null; wait "$coold_pid" 2>/dev/null; fi
  if [[ -n ${broker_pid:-} ]]; then kill -TERM "$broker_pid" 2>/dev/null; wait "$broker_pid" 2>/dev/null; fi
  if [[ -d $work/podman ]]; then in_ns "$harness" stop "$work/podman" >/dev/null 2>&1; fi
  # Podman leaves each exec session's conmon waiting 5 minutes (--exit-delay) for a caller
  # that will not come: every process still naming this run's directory goes too.
  local p
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$work/"; then kill -KILL "${p#/proc/}" 2>/dev/null; fi
  done
  # Everything in the run's network namespace is the run's: a process still there was
  # not stopped by the step that started it, which is a defect of this script.
  local leftover
  leftover=$(ip netns pids "$netns" 2>/dev/null)
  if [[ -n $leftover ]]; then
    echo "teardown: processes left in $netns:" >&2
    for p in $leftover; do echo "  $p $(tr '\0\n' '  ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)" >&2; done
    kill -KILL $leftover 2>/dev/null
    ((status != 0)) || status=1
  fi
  ip netns del "$netns" 2>/dev/null
  if ((status != 0)); then
    mkdir -p "$cache/last-failure" && cp "$work"/*.log "$cache/last-failure/" 2>/dev/null
    echo "logs kept in $cache/last-failure" >&2
  fi
  rm -rf --one-file-system "$work"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ broker requests
seq_no=0 answer="" code="" rid="" data=""
# The coold-lane requests sent, by verb, and the builds: what the M step expects the
# broker's and coold's /metrics to have counted.
declare -A sent=()
builds_sent=0
# dispatch TYPE FIELDS_JSON: one coold-lane request; sets $code, $answer (the envelope)
# and $data; fails the step unless the status is ok.
dispatch() {
  local type=$1 fields=${2:-{\}}
  seq_no=$((seq_no + 1))
  rid=deploy-$id-$seq_no
  sent[$type]=$((${sent[$type]:-0} + 1))
  local body
  body=$(jq -cn --arg h "$host_id" --arg r "$rid" --arg t "$type" --argjson f "$fields" \
    '{host_id:$h, request_id:$r, command:({type:$t} + $f)}')
  answer=$(curl -s --max-time 60 -w '\n%{http_code}' --unix-socket "$sock" http://broker/v1/coold/dispatch -d "$body") ||
    fail "$type: the broker's socket did not answer"
  code=${answer##*$'\n'}
  answer=${answer%$'\n'*}
  [[ $(jq -r .status <<<"$answer" 2>/dev/null) == ok ]] || fail "$type refused"
  data=$(jq -c .data <<<"$answer")
}

# ------------------------------------------------------------------ S: the machine
begin "S1 private network namespace $netns"
ip netns add "$netns"
in_ns ip link set lo up
in_ns sysctl -qw net.ipv4.ip_forward=1
ok

begin "S2 isolated Podman"
# Podman runs one runtime whatever a create names, and coold refuses a container Podman
# would run under another than its policy's default_runtime: the two must agree. crun
# (Debian's Podman default, the baseline's) cannot run containers on a kernel with hybrid
# cgroups (v1 controllers beside a v2 tree), so there both are runc, as an operator of
# such a host sets them (README, "Podman verbs").
runtime=crun
[[ -d /sys/fs/cgroup/unified ]] && runtime=runc
policy_file=$work/policy.textproto
sed "s/^default_runtime: \"crun\"/default_runtime: \"$runtime\"/" "$repo_root/policy/baseline.textproto" >"$policy_file"
grep -q "^default_runtime: \"$runtime\"" "$policy_file" || fail "policy/baseline.textproto names no default_runtime"
chmod 0644 "$policy_file"
live in_ns "$harness" start "$work/podman" "$runtime" >"$work/podman-start.log" 2>&1 || { cat "$work/podman-start.log" >&2; fail "podman"; }
podman_sock=$(tail -n 1 "$work/podman-start.log")
pod network create --subnet 10.210.0.0/24 --gateway "$gateway" --disable-dns "$net" >/dev/null
# Podman 4.3 has no --interface-name: its network file names the bridge, made above with
# the gateway DNS listens on, which netavark then uses as it is.
jq '.network_interface = "coolify0"' "$work/podman/net/$net.json" >"$work/net.json"
mv "$work/net.json" "$work/podman/net/$net.json"
# Podman refuses a subnet a route already covers: the bridge comes after the network.
in_ns ip link add coolify0 type bridge
in_ns ip addr add "$gateway/24" dev coolify0
in_ns ip link set coolify0 up
ok "network $net on bridge coolify0 $gateway/24"

begin "S3 base image localhost/nginx-debian:1 from Debian's nginx"
# No registry is reachable: the image is Debian's own nginx package files, the shared
# libraries it links from this machine (the same Debian release), and busybox for a shell.
build_base() {
  mkdir -p "$cache/debs"
  if ! ls "$cache"/debs/nginx_*.deb "$cache"/debs/nginx-common_*.deb >/dev/null 2>&1; then
    (cd "$cache/debs" && apt-get download nginx nginx-common >/dev/null 2>&1)
  fi
  local root=$work/nginx-root
  mkdir -p "$root"
  for deb in "$cache"/debs/nginx_*.deb "$cache"/debs/nginx-common_*.deb; do dpkg-deb -x "$deb" "$root"; done
  mkdir -p "$root"/{bin,tmp,run,var/log/nginx,var/lib/nginx,usr/share/nginx/html,etc/nginx/conf.d}
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh wget nslookup cat echo sleep ls; do ln -sf busybox "$root/bin/$applet"; done
  ldd "$root/usr/sbin/nginx" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"
  done
  printf '%s\n' root:x:0:0:root:/root:/bin/sh www-data:x:33:33:www-data:/var/www:/bin/sh \
    nobody:x:65534:65534:nobody:/nonexistent:/bin/sh >"$root/etc/passwd"
  printf '%s\n' root:x:0: www-data:x:33: nogroup:x:65534: >"$root/etc/group"
  # Workers as root: a static build's files arrive with the modes of the builder's clone
  # (owner-only), which www-data could not read.
  cat >"$root/etc/nginx/nginx.conf" <<'CONF'
worker_processes 1;
user root;
error_log stderr;
pid /run/nginx.pid;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  include /etc/nginx/conf.d/*.conf;
}
CONF
  cat >"$root/etc/nginx/conf.d/site.conf" <<'CONF'
server { listen 80; root /usr/share/nginx/html; }
CONF
  # The proxy runs as www-data (uid 33): exec runs as root nowhere (allow_exec_as_root),
  # so the uid that rewrites its configuration and signals the reload is nginx's own.
  cat >"$root/etc/nginx/proxy.conf" <<'CONF'
worker_processes 1;
error_log stderr;
pid /tmp/nginx-proxy.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path /tmp/body;
  proxy_temp_path /tmp/proxy;
  include /etc/nginx/proxy.d/*.conf;
}
CONF
  mkdir -p "$root/etc/nginx/proxy.d"
  echo 'server { listen 8080; return 503; }' >"$root/etc/nginx/proxy.d/site.conf"
  chown -R 33:33 "$root/etc/nginx/proxy.d"
  chmod 1777 "$root/tmp"
  echo 'nginx from Debian' >"$root/usr/share/nginx/html/index.html"
  tar -C "$root" -cf "$work/nginx-root.tar" .
  pod import --change 'CMD ["/usr/sbin/nginx","-g","daemon off;"]' --change 'ENV PATH=/usr/sbin:/bin' \
    "$work/nginx-root.tar" localhost/nginx-debian:1 >/dev/null
  # Builds run jailed with storage of their own: the base image is offered to them as a
  # docker-archive (COOLD_BUILD_IMAGES_DIR), which keeps its name.
  mkdir -p "$work/build-images"
  pod save --format=docker-archive -o "$work/build-images/nginx-debian.tar" localhost/nginx-debian:1 >/dev/null
  chmod 0755 "$work/build-images"
  chmod 0644 "$work/build-images/nginx-debian.tar"
}
live build_base >"$work/base.log" 2>&1 || { cat "$work/base.log" >&2; fail "base image"; }
ok "$(dpkg-deb -f "$(ls "$cache"/debs/nginx_*.deb | head -1)" Version)"

begin "S4 CA, broker certificate, host-token key"
(
  cd "$work"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
    -days 2 -subj /CN=coold-deploy-ca
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout broker.key -out broker.csr \
    -subj /CN=broker
  printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
  openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out broker.crt -days 2 -extfile san.ext
  openssl genrsa -out jwt.key 2048
  openssl rsa -in jwt.key -pubout -out jwt.pub
) >"$work/keys.log" 2>&1 || { cat "$work/keys.log" >&2; fail "openssl"; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
caps='["builder","images.pull","images.list","images.delete","containers.create","containers.start",
"containers.stop","containers.restart","containers.delete","containers.inspect","containers.logs",
"containers.exec","containers.healthcheck.run","containers.list","volumes.create","volumes.delete",
"volumes.inspect","networks.create","networks.delete","networks.list","firewall.allow","firewall.delete",
"firewall.list","firewall.bulk","firewall.reconcile","services.register","services.deregister",
"services.endpoints","dns.lookup","dns.stats","host.info","host.containers","host.stats"]'
header=$(printf '{"alg":"RS256","kid":"deploy","typ":"JWT"}' | b64url)
# The longest lifetime the broker accepts (BROKER_TOKEN_MAX_LIFETIME, 1h): a live system
# left running longer loses its stream when the token expires.
now_s=$(date +%s)
claims=$(jq -cn --arg s "$host_id" --argjson c "$caps" --argjson i "$now_s" --argjson e $((now_s + 3600)) \
  --arg j "deploy-$id-$now_s" '{sub:$s, aud:"coold", jti:$j, iat:$i, exp:$e, caps:$c}' | b64url)
signature=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$work/jwt.key" -binary | b64url)
printf '%s.%s.%s' "$header" "$claims" "$signature" >"$work/host-jwt"
chmod 0600 "$work/host-jwt"
head -c 24 /dev/urandom | base64 >"$work/api-token"
chmod 0600 "$work/api-token"
# The header curl reads /metrics with: from a file, so the token is never in an argv.
(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$work/api-token")" >"$work/api-auth")
ok "RS256 host token for $host_id"

begin "S5 broker (TLS, host tokens)"
# nsenter itself, not in_ns: a function run in the background is a subshell, and $! must
# be the broker (nsenter and env exec it) for the teardown's SIGTERM to reach it.
# Started by hand, as root: it binds its socket from BROKER_UNIX_SOCKET and drops to
# coolify-broker itself, with only the capabilities that drop needs in its bounding set
# and no_new_privs. broker.service's way (coolify-broker from exec, the socket passed by
# broker.socket) is //tests/units:units_test's and //tests/broker:socket_activation_e2e_test's.
nsenter --net="/run/netns/$netns" setpriv --no-new-privs --inh-caps=-all \
  --bounding-set=-all,+setuid,+setgid,+setpcap,+chown \
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin BROKER_GRPC_BIND=127.0.0.1:6443 \
  BROKER_TLS_CERT="$work/broker.crt" BROKER_TLS_KEY="$work/broker.key" \
  BROKER_JWT_KEYS="deploy=$work/jwt.pub" BROKER_UNIX_SOCKET="$sock" BROKER_STATE_DIR="$work/broker-state" \
  "$broker_bin" >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 100); do grep -q 'listening: ' "$work/broker.log" && break; sleep 0.1; done
[[ -S $sock ]] || fail "the broker did not bind $sock"
ok "$(grep -o 'listening: .*' "$work/broker.log" | head -1)"

begin "S6 coold (SQLite endpoints, namespace default, builds)"
mkdir -p "$work/etc" "$work/builds"
# Under coold.service's bounding set (read from the unit) and no_new_privs, so every run
# proves the unit leaves coold, its children and its jailed builds what they need.
coold_caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$repo_root/hardening/systemd/coold.service" |
  tr ' ' '\n' | sed -n 's/^CAP_\(.*\)/+\L\1/p' | paste -sd, -)
[[ -n $coold_caps ]] || fail "no CapabilityBoundingSet in hardening/systemd/coold.service"
nsenter --net="/run/netns/$netns" setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,"$coold_caps" \
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  COOLD_HOST_MGMT_IP=127.0.0.1 COOLD_HOST_ID="$host_id" \
  COOLD_NAMESPACES="default:$net:$gateway" COOLD_DNS_ZONE="$zone" COOLD_DNS_UPSTREAM=127.0.0.1:9 \
  COOLD_ENDPOINT_STORE=sqlite COOLD_ENDPOINT_DB="$work/endpoints/endpoints.db" \
  COOLD_BROKER_URL=grpcs://127.0.0.1:6443 COOLD_BROKER_TOKEN_FILE="$work/host-jwt" \
  COOLD_BROKER_CA_FILE="$work/ca.crt" \
  COOLD_BUILDER_ENABLED=1 COOLD_BUILDS_DIR="$work/builds" COOLD_BUILDER_ALLOW_FILE_URLS=1 \
  COOLD_BUILD_IMAGES_DIR="$work/build-images" \
  COOLD_PODMAN_SOCKET="$podman_sock" COOLD_POLICY_FILE="$policy_file" \
  COOLD_API_BIND=127.0.0.1:$api_port COOLD_API_TOKEN_FILE="$work/api-token" \
  COOLD_RULES_PATH="$work/etc/allow.rules" COOLD_BRIDGE_RULES_PATH="$work/etc/allow.nft" \
  "$coold_bin" >"$work/coold.log" 2>&1 &
coold_pid=$!
connected() { curl -s --unix-socket "$sock" http://broker/v1/health | jq -e '.hosts == 1' >/dev/null; }
wait_connected() {
  for _ in $(seq 1 300); do
    connected && return 0
    kill -0 "$coold_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
live wait_connected || fail "coold did not connect to the broker"
ok "connected as $host_id"

# ------------------------------------------------------------------ metrics
# snapshot NAME: both /metrics texts now, into $work/metrics-{broker,coold}-NAME.txt.
snapshot() {
  curl -s -f --max-time 10 --unix-socket "$sock" http://broker/metrics >"$work/metrics-broker-$1.txt" ||
    fail "the broker's /metrics did not answer"
  in_ns curl -s -f --max-time 10 -H @"$work/api-auth" "http://127.0.0.1:$api_port/metrics" \
    >"$work/metrics-coold-$1.txt" || fail "coold's /metrics did not answer"
}
# metric FILE NAME [LABEL=VALUE...]: the sum of NAME's samples in the exposition FILE whose
# labels include every LABEL="VALUE" given; 0 when there is none.
metric() {
  local file=$1 name=$2
  shift 2
  awk -v name="$name" -v want="$*" '
    BEGIN { n = split(want, pairs, " ") }
    /^#/ || NF == 0 { next }
    {
      value = $NF
      sample = substr($0, 1, length($0) - length(value) - 1)
      brace = index(sample, "{")
      if ((brace ? substr(sample, 1, brace - 1) : sample) != name) next
      labels = brace ? "," substr(sample, brace + 1, length(sample) - brace - 1) "," : ","
      for (i = 1; i <= n; i++) {
        eq = index(pairs[i], "=")
        if (index(labels, "," substr(pairs[i], 1, eq - 1) "=\"" substr(pairs[i], eq + 1) "\",") == 0) next
      }
      sum += value
    }
    END { printf "%d\n", sum }' "$file"
}
# moved SIDE NAME [LABEL=VALUE...]: how far the sum moved from snapshot "before" to "after".
moved() {
  local side=$1
  shift
  echo $(($(metric "$work/metrics-$side-after.txt" "$@") - $(metric "$work/metrics-$side-before.txt" "$@")))
}
snapshot before

# ------------------------------------------------------------------ T: the deployment
# A local git repository: the site, v1 on branch main; v2 is committed for T10.
repo=$work/site.git
mkdir -p "$repo/dist"
git -C "$repo" init -q -b main
echo 'site v1' >"$repo/dist/index.html"
git -C "$repo" add -A
git -C "$repo" -c user.name=deploy -c user.email=deploy@localhost commit -qm v1

# build TAG: the static_build of the repository's main into localhost/default/site:TAG
# over the build lane, polled as central polls it.
build() {
  local tag=$1
  seq_no=$((seq_no + 1))
  rid=deploy-$id-$seq_no
  local body
  body=$(jq -cn --arg h "$host_id" --arg r "$rid" --arg u "file://$repo" --arg i "localhost/default/site:$tag" \
    '{host_id:$h, request_id:$r, command:{type:"static_build", repo_url:$u, git_ref:"main",
      target_image:$i, base_image:"localhost/nginx-debian:1", output_dir:"dist"}}')
  builds_sent=$((builds_sent + 1))
  answer=$(curl -s -w '\n%{http_code}' --unix-socket "$sock" http://broker/v1/build/dispatch -d "$body")
  code=${answer##*$'\n'} answer=${answer%$'\n'*}
  [[ $code == 202 ]] || fail "build dispatch refused"
  for _ in $(seq 1 20); do
    answer=$(curl -s -w '\n%{http_code}' --unix-socket "$sock" "http://broker/v1/build/result/$rid?timeout_ms=30000")
    code=${answer##*$'\n'} answer=${answer%$'\n'*}
    [[ $code == 408 ]] || break
  done
  [[ $(jq -r .status <<<"$answer" 2>/dev/null) == ok ]] || fail "build failed"
}

begin "T0 build site v1 from a local git repository"
live build v1
ok "localhost/default/site:v1, $(jq -r '.duration_ms // empty' <<<"$answer") ms in the builder"

begin "T3 volume site-data"
dispatch volumes.create '{"name":"site-data"}'
ok

# create_app NAME TAG: T4's create, the app's spec as central templates it.
create_app() {
  dispatch containers.create "$(jq -cn --arg n "$1" --arg i "localhost/default/site:$2" --arg net "$net" \
    '{name:$n, image:$i, namespace:"default", networks:[$net], volumes:["site-data:/data"],
      labels:["app=site"], restart_policy:"always",
      healthcheck:{test:["CMD","wget","-q","-O-","http://127.0.0.1/"], interval_seconds:2, timeout_seconds:2, retries:3}}')"
}
# wait_healthy NAME: T6, inspect until running, then the health check until healthy.
wait_healthy() {
  local state="" health=""
  container=$1
  for _ in $(seq 1 100); do
    dispatch containers.inspect "$(jq -cn --arg n "$1" '{id:$n}')"
    state=$(jq -r '.State.Status' <<<"$data")
    if [[ $state == running ]]; then
      dispatch containers.healthcheck.run "$(jq -cn --arg n "$1" '{id:$n}')"
      health=$(jq -r '.status // .Status // empty' <<<"$data")
      if [[ $health == healthy ]]; then container=""; return 0; fi
    fi
    sleep 0.3
  done
  fail "$1 not running and healthy (state $state, health ${health:-none})"
}
# address_of NAME: sets $c_ip (its address on the namespace's network) and $c_id. Not in
# a $(...) subshell: the request counter must move in this shell, or the next request
# would repeat a request_id and get the broker's kept answer to the earlier one.
address_of() {
  dispatch containers.inspect "$(jq -cn --arg n "$1" '{id:$n}')"
  c_ip=$(jq -r --arg net "$net" '.NetworkSettings.Networks[$net].IPAddress' <<<"$data")
  c_id=$(jq -r '.Id' <<<"$data")
}
# register ID NAME IP: the row central writes; a container's DNS name is its own name.
register() {
  dispatch services.register "$(jq -cn --arg c "$1" --arg n "$2" --arg ip "$3" \
    '{service_id:"site", namespace:"default", container_id:$c, container_name:$n, ip:$ip, port:80,
      state:"running", health:"healthy"}')"
}
# resolve NAME: sets $answer_dns, what `NAME.default.<zone>` resolves to inside the probe
# container ("" for NXDOMAIN).
resolve() {
  dispatch containers.exec "$(jq -cn --arg n "$1" --arg z "$zone" --arg g "$gateway" \
    '{id:"probe", namespace:"default", user:"65534", command:["nslookup", ($n + ".default." + $z), $g]}')"
  answer_dns=$({ jq -r '.stdout' <<<"$data" | sed -n '/^Name:/,$p' | grep -oE '10\.210\.[0-9]+\.[0-9]+' || true; } | sort | tr '\n' ' ')
}
# expect_dns NAME WANT: resolve until the answer is WANT ("" for NXDOMAIN), a few tries:
# DNS follows the store within a second, and a lost UDP query is retried as a resolver would.
expect_dns() {
  for _ in 1 2 3 4 5 6; do
    resolve "$1"
    [[ $answer_dns == "$2" ]] && return 0
    sleep 0.5
  done
  return 1
}
kernel_rule() { in_ns iptables-save -t filter 2>/dev/null | grep -c -- "$1" || true; }
proxy_to() {
  local conf="server { listen 8080; location / { proxy_pass http://$1:80; } }"
  dispatch containers.exec "$(jq -cn --arg c "$conf" \
    '{id:"proxy", namespace:"default", user:"33", command:["sh","-c",
      "printf \"%s\\n\" \"$0\" >/etc/nginx/proxy.d/site.conf && nginx -c /etc/nginx/proxy.conf -s reload", $c]}')"
  [[ $(jq -r .exit_code <<<"$data") == 0 ]] || fail "proxy reload: $(jq -r .stderr <<<"$data")"
}

begin "T4 create web-v1"
create_app web-v1 v1
ok "$(jq -r .id <<<"$data" | cut -c1-12)"

begin "T5 start web-v1"
dispatch containers.start '{"id":"web-v1"}'
ok

begin "T6 poll until running and healthy"
live wait_healthy web-v1
address_of web-v1
v1_ip=$c_ip v1_id=$c_id
ok "$v1_ip"

begin "T7 register site, resolve it from another container"
register "$v1_id" web-v1 "$v1_ip"
dispatch containers.create "$(jq -cn --arg net "$net" \
  '{name:"probe", image:"localhost/nginx-debian:1", namespace:"default", networks:[$net], command:["sleep","86400"]}')"
dispatch containers.start '{"id":"probe"}'
expect_dns web-v1 "$v1_ip " || fail "web-v1.default.$zone resolved to '$answer_dns', not $v1_ip: $(jq -c . <<<"$data")"
ok "web-v1.default.$zone -> $answer_dns"

begin "T8 proxy container, firewall allow proxy -> web-v1"
dispatch containers.create "$(jq -cn --arg net "$net" \
  '{name:"proxy", image:"localhost/nginx-debian:1", namespace:"default", networks:[$net], user:"33",
    command:["/usr/sbin/nginx","-c","/etc/nginx/proxy.conf","-g","daemon off;"], restart_policy:"always"}')"
dispatch containers.start '{"id":"proxy"}'
address_of proxy
proxy_ip=$c_ip
dispatch firewall.allow "$(jq -cn --arg s "$proxy_ip" --arg d "$v1_ip" \
  '{namespace:"default", src:$s, dst:$d, proto:"tcp", port:80}')"
v1_rule=$(jq -r .id <<<"$data")
[[ $(kernel_rule "$v1_rule") -ge 1 ]] || fail "rule $v1_rule not in the namespace's kernel firewall"
ok "rule $v1_rule ($proxy_ip -> $v1_ip:80) in COOLIFY-ALLOW"

# After a reload nginx's old workers finish what they hold and stop while the new ones
# serve: the switch is done once five requests in a row get the new site.
proxy_serves() {
  local in_a_row=0
  page=""
  for _ in $(seq 1 100); do
    page=$(in_ns curl -s --max-time 2 "http://$proxy_ip:8080/" || true)
    if [[ $page == "$1" ]]; then in_a_row=$((in_a_row + 1)); else in_a_row=0; fi
    ((in_a_row == 5)) && return 0
    sleep 0.1
  done
  return 1
}

begin "T9 proxy reloaded by exec, the site fetched through it"
proxy_to "$v1_ip"
proxy_serves "site v1" || fail "http://$proxy_ip:8080/ answered '$page'"
ok "http://$proxy_ip:8080/ -> $page"

# The client: one request through the proxy every 50 ms for the whole rollout.
client() {
  while :; do
    if body=$(curl -s -f --max-time 2 "http://$proxy_ip:8080/"); then echo "ok $body"; else echo "FAIL $?"; fi
    sleep 0.05
  done
}
# nsenter itself, not in_ns: a function run in the background is a subshell, and killing
# that subshell would leave the loop it started running after this script.
nsenter --net="/run/netns/$netns" bash -c "$(declare -f client); proxy_ip=$proxy_ip; client" >"$work/client.log" 2>&1 &
client_pid=$!

begin "T10 roll out v2 through the build lane"
echo 'site v2' >"$repo/dist/index.html"
git -C "$repo" -c user.name=deploy -c user.email=deploy@localhost commit -qam v2
live build v2
create_app web-v2 v2
dispatch containers.start '{"id":"web-v2"}'
live wait_healthy web-v2
address_of web-v2
v2_ip=$c_ip v2_id=$c_id
register "$v2_id" web-v2 "$v2_ip"
dispatch firewall.allow "$(jq -cn --arg s "$proxy_ip" --arg d "$v2_ip" \
  '{namespace:"default", src:$s, dst:$d, proto:"tcp", port:80}')"
v2_rule=$(jq -r .id <<<"$data")
proxy_to "$v2_ip"
# v1 retires only once the proxy serves v2, as an operator checks before retiring.
proxy_serves "site v2" || fail "http://$proxy_ip:8080/ answered '$page' after the switch to v2"
ok "web-v2 $v2_ip healthy, registered, allowed, proxied"

# Out of DNS before it stops: once the container is gone, coold's own sync drops its row
# and a deregister after the delete would find nothing (404).
begin "T10 retire v1 (deregister, stop, delete, firewall delete)"
dispatch services.deregister "$(jq -cn --arg c "$v1_id" '{service_id:"site", container_id:$c}')"
dispatch containers.stop '{"id":"web-v1","timeout_seconds":5}'
dispatch containers.delete '{"id":"web-v1"}'
dispatch firewall.delete "$(jq -cn --arg i "$v1_rule" '{id:$i}')"
sleep 1
kill "$client_pid" 2>/dev/null; wait "$client_pid" 2>/dev/null || true
client_pid=""
requests=$(wc -l <"$work/client.log")
failures=$(grep -c '^FAIL' "$work/client.log" || true)
v2_seen=$(grep -c '^ok site v2' "$work/client.log" || true)
((failures == 0)) || { answer=""; rid=""; fail "$failures of $requests requests through the proxy failed"; }
((v2_seen > 0)) || fail "the client never saw v2"
[[ $(kernel_rule "$v1_rule") == 0 ]] || fail "rule $v1_rule still in the kernel"
[[ $(kernel_rule "$v2_rule") -ge 1 ]] || fail "rule $v2_rule not in the kernel"
expect_dns web-v2 "$v2_ip " || fail "web-v2.default.$zone resolved to '$answer_dns', not $v2_ip"
expect_dns web-v1 "" || fail "web-v1.default.$zone still resolves to '$answer_dns' after its retirement"
ok "$requests requests through the proxy, 0 failed; web-v2 -> $v2_ip, web-v1 NXDOMAIN"

begin "M /metrics counters moved as the steps say"
answer="" rid=""
snapshot after
# expect_moved WANT SIDE NAME [LABEL=VALUE...]: the counter moved by exactly WANT.
expect_moved() {
  local want=$1 got
  shift
  got=$(moved "$@")
  [[ $got == "$want" ]] || fail "$1's $2{${*:3}} moved by $got, not $want"
}
dispatches=0
for verb in "${!sent[@]}"; do
  expect_moved "${sent[$verb]}" broker broker_dispatches_total verb="$verb"
  expect_moved "${sent[$verb]}" coold coold_commands_total lane=broker verb="$verb"
  dispatches=$((dispatches + ${sent[$verb]}))
done
expect_moved "$builds_sent" broker broker_build_dispatches_total status=202
expect_moved "$builds_sent" coold coold_builds_total outcome=built
expect_moved "$builds_sent" coold coold_build_duration_seconds_count outcome=built
expect_moved 2 coold coold_firewall_mutations_total op=allow result=applied
expect_moved 1 coold coold_firewall_mutations_total op=delete result=applied
noerror=$(moved coold coold_dns_queries_total namespace=default rcode=NOERROR)
nxdomain=$(moved coold coold_dns_queries_total namespace=default rcode=NXDOMAIN)
((noerror >= 2)) || fail "coold_dns_queries_total{rcode=NOERROR} moved by $noerror, not 2 or more"
((nxdomain >= 1)) || fail "coold_dns_queries_total{rcode=NXDOMAIN} moved by $nxdomain, not 1 or more"
[[ $(metric "$work/metrics-broker-after.txt" broker_connected_hosts) == 1 ]] || fail "broker_connected_hosts is not 1"
ok "$dispatches dispatches (${#sent[@]} verbs), $builds_sent builds built, 3 firewall mutations, DNS $noerror NOERROR $nxdomain NXDOMAIN"

# ------------------------------------------------------------------ summary
echo
echo "summary"
printf '  %s\n' "${summary[@]}"
echo
cat <<NEXT
what to try next (everything lives in network namespace $netns):
  ip netns exec $netns curl http://$proxy_ip:8080/            # the site, through the proxy
  ip netns exec $netns $coolctl_bin --api http://127.0.0.1:$api_port \\
      --token-file $work/api-token firewall list
  ip netns exec $netns dig @$gateway web-v2.default.$zone +short
  curl -s --unix-socket $sock http://b/v1/health
  curl -s --unix-socket $sock http://b/metrics                  # the broker's counters
  ip netns exec $netns curl -s -H @$work/api-auth http://127.0.0.1:$api_port/metrics   # coold's
  curl -s --unix-socket $sock http://b/v1/coold/dispatch \\
      -d '{"host_id":"$host_id","request_id":"try-1","command":{"type":"containers.list"}}'
  logs: $work/coold.log $work/broker.log
NEXT
if ((once)); then exit 0; fi
echo "Ctrl-C tears it all down."
sleep infinity &
wait $! || true

#!/usr/bin/env bash
# DNS benchmark: our per-namespace server against aardvark-dns (Podman's per-network DNS
# server) and Knot DNS, in one run, serving the same 1,000 names. Root; everything runs
# in a private network namespace over local bridge addresses. Each server is pinned to
# CPU 0, dnsperf to CPU 1.
#
#   bash bench/dns/run.sh [seconds per throughput run, default 5]
#
# Per server: qps (dnsperf, 4 clients, 200 outstanding), server CPU time per answered
# query (utime+stime of the server process from /proc/<pid>/stat over the run, divided by
# dnsperf's completed queries), and p50/p99 latency at a fixed 10,000 qps. Then our cost
# at 1,000 and 100,000 rows, and for an unknown source and an unknown name. Prints
# everything; asserts nothing.
set -euo pipefail

run_seconds=${1:-5}
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
for tool in dnsperf knotd taskset ip /usr/lib/podman/aardvark-dns; do
  command -v "$tool" >/dev/null || { echo "dns bench: $tool is missing (bash tools/install-deps.sh)" >&2; exit 1; }
done
bazel build //bench/dns:dns_bench_server //bench/dns:parse_bench >/dev/null 2>&1 ||
  bazel build //bench/dns:dns_bench_server //bench/dns:parse_bench
bin=$(bazel info bazel-bin 2>/dev/null)
ours_bin=$bin/bench/dns/dns_bench_server
parse_bin=$bin/bench/dns/parse_bench

ns=coolddnsbench$$
work=$(mktemp -d /tmp/dnsbench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f $work/aardvark/aardvark.pid ]] && kill "$(cat "$work/aardvark/aardvark.pid")" 2>/dev/null || true
  sleep 0.2
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "/etc/netns/$ns" "$work"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }

# Three bridges: the server's gateway address first, then client addresses.
ip netns add "$ns"
mkdir -p "/etc/netns/$ns"
echo "nameserver 10.92.0.1" >"/etc/netns/$ns/resolv.conf"  # aardvark forwards unknown names here (Knot)
in_ns ip link set lo up
for spec in "br-ours 10.90.0" "br-aard 10.91.0" "br-knot 10.92.0"; do
  set -- $spec
  in_ns ip link add "$1" type bridge
  for host in 1 2 3; do in_ns ip addr add "$2.$host/24" dev "$1"; done
  in_ns ip link set "$1" up
done

# Query files: the same 1,000 names for each server, in each server's spelling.
for i in $(seq 0 999); do
  echo "web$i.default.coolify.internal A" >>"$work/names"
  echo "web$i A" >>"$work/aardvark-names"
  echo "web$i.dns.podman A" >>"$work/aardvark-search-names"
  echo "nobody$i.default.coolify.internal A" >>"$work/unknown"
  echo "nobody$i A" >>"$work/aardvark-unknown"
  echo "web$((i * 100)).default.coolify.internal A" >>"$work/names-100k"
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# throughput NAME PID SERVER SOURCE FILE: one line of figures, and the figures in globals.
throughput() {
  local name=$1 pid=$2 server=$3 source=$4 file=$5
  local t0 t1 out
  t0=$(cpu_ticks "$pid")
  out=$(in_ns taskset -c 1 dnsperf -s "$server" -a "$source" -d "$file" -l "$run_seconds" -c 4 -q 200 2>&1)
  t1=$(cpu_ticks "$pid")
  completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
  qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' <<<"$out")
  codes=$(awk -F': *' '/Response codes:/ {print $2}' <<<"$out")
  local hz
  hz=$(getconf CLK_TCK)
  cpu_us=$(awk -v t="$((t1 - t0))" -v n="$completed" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print "n/a" }')
}

# latency SERVER SOURCE FILE: p50 and p99 in microseconds at 10,000 qps.
latency() {
  local out
  out=$(in_ns taskset -c 1 dnsperf -s "$1" -a "$2" -d "$3" -l 3 -Q 10000 -c 4 -v 2>&1 | awk '/^> / {print $NF}' | sort -g)
  local n
  n=$(wc -l <<<"$out")
  p50=$(sed -n "$(((n + 1) / 2))p" <<<"$out" | awk '{printf "%.0f", $1 * 1e6}')
  p99=$(sed -n "$(((n * 99 + 99) / 100))p" <<<"$out" | awk '{printf "%.0f", $1 * 1e6}')
}

median() { tr ' ' '\n' | grep . | sort -g | sed -n 2p; }  # of three

start_ours() {  # ROWS → pid in $ours_pid
  # Not through in_ns: a backgrounded function is a subshell, and $! must be the server
  # itself (ip netns exec and taskset exec, so it is).
  ip netns exec "$ns" taskset -c 0 "$ours_bin" --ip 10.90.0.1 --port 53 --rows "$1" --upstream 10.92.0.1:53 >"$work/ours.out" 2>"$work/ours.err" &
  ours_pid=$!
  pids+=("$ours_pid")
  for _ in $(seq 100); do grep -q ready "$work/ours.out" 2>/dev/null && return; sleep 0.1; done
  echo "our server did not start: $(cat "$work/ours.err")" >&2
  exit 1
}

# Knot: an authoritative zone with the same 1,000 names, one worker of each kind.
mkdir -p "$work/knot"
{
  echo "\$ORIGIN coolify.internal."
  echo "\$TTL 5"
  echo "@ SOA ns hostmaster 1 3600 600 86400 5"
  echo "@ NS ns"
  echo "ns A 10.92.0.1"
  for i in $(seq 0 999); do echo "web$i.default A 10.100.$((i / 256)).$((i % 256))"; done
} >"$work/knot/coolify.internal.zone"
cat >"$work/knot/knot.conf" <<CONF
server:
  listen: 10.92.0.1@53
  rundir: $work/knot
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: $work/knot
template:
  - id: default
    storage: $work/knot
zone:
  - domain: coolify.internal
CONF
chmod -R a+rwX "$work/knot"
ip netns exec "$ns" taskset -c 0 knotd -c "$work/knot/knot.conf" >"$work/knot.log" 2>&1 &
knot_pid=$!
pids+=("$knot_pid")

# aardvark-dns: its config directory as netavark writes it (a file per network: the
# gateway, then "<container id> <ipv4> <ipv6> <names>"); 10.91.0.2 is a listed container.
mkdir -p "$work/aardvark"
{
  echo "10.91.0.1"
  echo "c0000000000000000000000000000000000000000000000000000000000000000 10.91.0.2  client"
  for i in $(seq 0 999); do
    printf 'c%063d 10.101.%d.%d  web%d\n' "$i" $((i / 256)) $((i % 256)) "$i"
  done
} >"$work/aardvark/coolify-bench"
(cd "$work/aardvark" && in_ns taskset -c 0 /usr/lib/podman/aardvark-dns --config "$work/aardvark" -p 53 run >"$work/aardvark.log" 2>&1)
for _ in $(seq 50); do [[ -s $work/aardvark/aardvark.pid ]] && break; sleep 0.1; done
aardvark_pid=$(cat "$work/aardvark/aardvark.pid")

start_ours 1000
sleep 1
in_ns dig @10.90.0.1 +short web7.default.coolify.internal | grep -q 10.100.0.7 || { echo "our server does not answer" >&2; exit 1; }
in_ns dig @10.92.0.1 +short web7.default.coolify.internal | grep -q 10.100.0.7 || { echo "knotd does not answer: $(cat "$work/knot.log")" >&2; exit 1; }
in_ns dig @10.91.0.1 -b 10.91.0.2 +short web7 | grep -q 10.101.0.7 || { echo "aardvark-dns does not answer" >&2; exit 1; }

echo "DNS benchmark: ${run_seconds}s per throughput run, servers on CPU 0, dnsperf on CPU 1 ($(nproc) CPUs)"
echo "machine load before the run (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(p50/p99: at 10,000 qps; for the first two rows the median of three alternating rounds)"
printf '%-44s %9s %12s %8s %8s  %s\n' "server / case" "qps" "CPU us/query" "p50 us" "p99 us" "responses"
row() { printf '%-44s %9s %12s %8s %8s  %s\n' "$1" "$qps" "$cpu_us" "$p50" "$p99" "$codes"; }

# Latency is what other load on the machine disturbs most: three rounds, alternating
# between our server and Knot, and the median of each.
ours_p50s="" ours_p99s="" knot_p50s="" knot_p99s=""
for _ in 1 2 3; do
  latency 10.90.0.1 10.90.0.2 "$work/names"; ours_p50s+=" $p50" ours_p99s+=" $p99"
  latency 10.92.0.1 10.92.0.2 "$work/names"; knot_p50s+=" $p50" knot_p99s+=" $p99"
done
throughput ours "$ours_pid" 10.90.0.1 10.90.0.2 "$work/names"
p50=$(median <<<"$ours_p50s") p99=$(median <<<"$ours_p99s")
ours_cpu=$cpu_us ours_p99=$p99; row "coold dns (1,000 rows)"
throughput knot "$knot_pid" 10.92.0.1 10.92.0.2 "$work/names"
p50=$(median <<<"$knot_p50s") p99=$(median <<<"$knot_p99s")
knot_cpu=$cpu_us knot_p99=$p99; row "knotd (1,000 names, 1 worker)"
throughput aardvark "$aardvark_pid" 10.91.0.1 10.91.0.2 "$work/aardvark-names"; latency 10.91.0.1 10.91.0.2 "$work/aardvark-names"
aard_cpu=$cpu_us; row "aardvark-dns (listed source, bare name)"
# Its other path: a name with Podman's search domain, which aardvark 1.4 answers by
# scanning every container of the network instead of its hash lookup.
throughput aardvark "$aardvark_pid" 10.91.0.1 10.91.0.2 "$work/aardvark-search-names"; latency 10.91.0.1 10.91.0.2 "$work/aardvark-search-names"
row "aardvark-dns (listed source, name.dns.podman)"

echo
echo "Cost of an unknown source and an unknown name:"
throughput ours "$ours_pid" 10.90.0.1 10.90.0.3 "$work/names"; latency 10.90.0.1 10.90.0.3 "$work/names"
row "coold dns, source not a container"
throughput ours "$ours_pid" 10.90.0.1 10.90.0.2 "$work/unknown"; latency 10.90.0.1 10.90.0.2 "$work/unknown"
row "coold dns, unknown name (NXDOMAIN)"
throughput aardvark "$aardvark_pid" 10.91.0.1 10.91.0.3 "$work/aardvark-names"; latency 10.91.0.1 10.91.0.3 "$work/aardvark-names"
row "aardvark-dns, source not a listed container"
throughput aardvark "$aardvark_pid" 10.91.0.1 10.91.0.2 "$work/aardvark-unknown"; latency 10.91.0.1 10.91.0.2 "$work/aardvark-unknown"
row "aardvark-dns, unknown name (forwarded)"
throughput knot "$knot_pid" 10.92.0.1 10.92.0.2 "$work/unknown"; latency 10.92.0.1 10.92.0.2 "$work/unknown"
row "knotd, unknown name (NXDOMAIN)"

kill "$ours_pid"; wait "$ours_pid" 2>/dev/null || true
echo
echo "Table size (coold dns):"
start_ours 100000
sleep 1
throughput ours "$ours_pid" 10.90.0.1 10.90.0.2 "$work/names-100k"; latency 10.90.0.1 10.90.0.2 "$work/names-100k"
row "coold dns (100,000 rows)"
big_cpu=$cpu_us
kill "$ours_pid"; wait "$ours_pid" 2>/dev/null || true

echo
awk -v o="$ours_cpu" -v a="$aard_cpu" -v k="$knot_cpu" -v b="$big_cpu" -v op="$ours_p99" -v kp="$knot_p99" 'BEGIN {
  printf "CPU per query vs aardvark-dns: %.2fx (target <= 0.5x)\n", o / a
  printf "CPU per query vs knotd:        %.2fx (target <= 1.2x)\n", o / k
  printf "p99 vs knotd:                  %s us vs %s us (target: no worse)\n", op, kp
  printf "CPU per query 100,000 / 1,000 rows: %.2fx (target: flat)\n", b / o
}'
echo "machine load after the run (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$parse_bin"

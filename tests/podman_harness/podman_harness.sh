#!/bin/bash
# Starts and stops an isolated Podman API service for tests.
#
#   podman_harness.sh start DIR [RUNTIME]   prepare DIR (must be empty or absent), start
#                                 the service with RUNTIME (runc unless named; crun, or runsc:
#                                 gVisor) as its default OCI runtime, import
#                                 localhost/busybox:latest, wait for _ping; prints the
#                                 socket path on stdout as its last line
#   podman_harness.sh podman DIR ARGS...   run the podman CLI on DIR's storage
#   podman_harness.sh stop-service DIR     kill the service only (storage stays)
#   podman_harness.sh start-service DIR    start the service again on the same storage
#   podman_harness.sh stop DIR    remove every container, kill the service, unmount and
#                                 delete DIR
#
# Isolation: its own --root, --runroot, --tmpdir, --network-config-dir, storage.conf,
# registries.conf (no search registry) and containers.conf (default_ulimits = [], file
# events logger, a runsc entry that runs gVisor on the container's bridge), cgroupfs. The
# host's default Podman storage is never read or written. DIR under $TEST_TMPDIR is long,
# and both the socket (sockaddr_un holds 108 bytes) and Podman's runroot (at most 50
# characters) need short paths, so those two are reached through a short symlink
# /tmp/coold-pdm.XXXXXX pointing at DIR; `stop` removes it.
set -euo pipefail

die() { echo "podman_harness: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || die "usage: $0 start|stop|podman|stop-service|start-service DIR [ARGS...]"
shift 2
dir=$(realpath -m -- "$dir")

env_for() {
  export CONTAINERS_CONF="$dir/containers.conf"
  export CONTAINERS_STORAGE_CONF="$dir/storage.conf"
  export CONTAINERS_REGISTRIES_CONF="$dir/registries.conf"
  export XDG_RUNTIME_DIR="$dir/xdg" XDG_CONFIG_HOME="$dir/xdg/config" XDG_DATA_HOME="$dir/xdg/data"
  export TMPDIR="$dir/tmp"
}

pod() {
  env_for
  podman --root "$dir/root" --runroot "$(sock_link)/runroot" --tmpdir "$dir/libpod" \
    --network-config-dir "$dir/net" --runtime "$(default_runtime)" --cgroup-manager cgroupfs \
    --events-backend file "$@"
}

sock_link() { cat "$dir/sock_link"; }
# What `start` was given; runc for a DIR that `start` left before writing it.
default_runtime() { cat "$dir/runtime" 2>/dev/null || echo runc; }

start_service() {
  local link; link=$(sock_link)
  rm -f "$dir/podman.sock"
  env_for
  # setsid: the service gets its own process group, so stop can kill it with its children.
  setsid podman --root "$dir/root" --runroot "$link/runroot" --tmpdir "$dir/libpod" \
    --network-config-dir "$dir/net" --runtime "$(default_runtime)" --cgroup-manager cgroupfs \
    --events-backend file system service --time=0 "unix://$link/podman.sock" \
    </dev/null >>"$dir/service.log" 2>&1 &
  echo $! >"$dir/service.pid"
  local i
  for i in $(seq 1 200); do
    if [[ -S "$dir/podman.sock" ]] &&
       curl -sf --max-time 2 --unix-socket "$link/podman.sock" http://d/v4.0.0/libpod/_ping >/dev/null; then
      return 0
    fi
    kill -0 "$(cat "$dir/service.pid")" 2>/dev/null || { cat "$dir/service.log" >&2; die "podman system service exited"; }
    sleep 0.1
  done
  cat "$dir/service.log" >&2
  die "podman system service did not answer _ping within 20 s"
}

stop_service() {
  [[ -f "$dir/service.pid" ]] || return 0
  local pid; pid=$(cat "$dir/service.pid")
  kill -TERM -- "-$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$dir/service.pid" "$dir/podman.sock"
}

case "$cmd" in
  start)
    command -v podman >/dev/null || die "podman is not installed"
    runtime=${1:-runc}
    [[ "$runtime" == runc || "$runtime" == crun || "$runtime" == runsc ]] || die "runtime $runtime: runc, crun or runsc"
    command -v "$runtime" >/dev/null || die "$runtime is not installed"
    [[ -x /bin/busybox ]] || die "/bin/busybox (busybox-static) is not installed"
    [[ ! -e "$dir" || -z "$(ls -A "$dir")" ]] || die "$dir is not empty"
    mkdir -p "$dir"
    link=$(mktemp -d /tmp/coold-pdm.XXXXXX)
    rmdir "$link" && ln -s "$dir" "$link"
    echo "$link" >"$dir/sock_link"
    echo "$runtime" >"$dir/runtime"
    mkdir -p "$dir"/{root,runroot,libpod,net,tmp,xdg/config,xdg/data,rootfs/bin,rootfs/tmp,rootfs/etc}
    chmod 0700 "$dir/xdg"
    cat >"$dir/containers.conf" <<CONF
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "$runtime"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/libpod"
[engine.runtimes]
runsc = ["$dir/runsc-in-podman-netns"]
[network]
network_config_dir = "$dir/net"
CONF
    # Debian 12's runsc (0.0~20221219) takes any network namespace on this kernel for the
    # host's (it tests for /proc/sys/net/core/rmem_default, which newer kernels show in
    # every namespace) and refuses to copy Podman's bridge interfaces into its own network
    # stack. --network=host keeps the sandbox in the namespace Podman made for the
    # container, on its bridge, with the host kernel's stack behind gVisor's sentry.
    # Podman 4.3's containers.conf cannot give a runtime flags, hence this wrapper, which
    # exists only here in the tests (README, "gVisor", has the operator's version).
    printf '%s\n' '#!/bin/sh' 'exec runsc --network=host "$@"' >"$dir/runsc-in-podman-netns"
    chmod 0755 "$dir/runsc-in-podman-netns"
    cat >"$dir/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$dir/root"
runroot = "$link/runroot"
CONF
    # 127.0.0.1:15000 is plain HTTP: tests stand up a registry of their own there.
    printf '%s\n' 'unqualified-search-registries = []' '' '[[registry]]' 'location = "127.0.0.1:15000"' \
      'insecure = true' >"$dir/registries.conf"
    # A rootfs holding Debian's static busybox and one symlink per applet.
    cp /bin/busybox "$dir/rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
      [[ "$applet" == busybox ]] || ln -sf busybox "$dir/rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/rootfs/etc/passwd"
    echo 'root:x:0:' >"$dir/rootfs/etc/group"
    tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
    pod import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' \
      "$dir/rootfs.tar" localhost/busybox:latest >"$dir/import.log" 2>&1 ||
      { cat "$dir/import.log" >&2; die "podman import failed"; }
    start_service
    echo "$link/podman.sock"
    ;;
  podman) pod "$@" ;;
  stop-service) stop_service ;;
  start-service) start_service ;;
  stop)
    [[ -d "$dir" ]] || exit 0
    if [[ -f "$dir/sock_link" ]]; then
      pod rm --all --force --time 0 >/dev/null 2>&1 || true
      pod volume rm --all --force >/dev/null 2>&1 || true
    fi
    stop_service
    # Unmount whatever is still mounted beneath DIR (overlay layers, shm), deepest first.
    awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
    [[ -f "$dir/sock_link" ]] && rm -f "$(cat "$dir/sock_link")"
    rm -rf --one-file-system "$dir"
    ;;
  *) die "unknown command $cmd" ;;
esac

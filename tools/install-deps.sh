#!/usr/bin/env bash
# Installs every Debian 12 package the project needs to build, test and benchmark.
# Idempotent: packages already present are left alone; nothing outside Debian is fetched.
set -euo pipefail

packages=(
  # Build toolchain: Bazel 4 and its offline Java rules, g++ (default), clang-14 (fuzz).
  bazel-bootstrap bazel-rules-java g++ clang-14 libclang-rt-14-dev llvm-14 pkg-config git
  # RPC and base libraries.
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libgrpc-dev libabsl-dev
  # Sandbox, netlink, storage, HTTP/JSON, crypto.
  libseccomp-dev seccomp libcap-ng-dev libcap-ng-utils libnftnl-dev libmnl-dev libsqlite3-dev sqlite3
  libboost1.81-dev libboost-json1.81-dev android-libboringssl-dev libssl-dev
  # Tests.
  libgtest-dev libgmock-dev
  # Debian packages (packaging/): dpkg-deb, dpkg-shlibdeps, strip, lintian, the
  # maintainer scripts' adduser.
  dpkg-dev binutils xz-utils lintian adduser init-system-helpers
  # The main job (tools/deploy/deploy.sh): JSON on the broker's socket, nsenter.
  jq
  # Real peers the tests and benchmarks start.
  iproute2 nftables iptables podman buildah runc crun netavark aardvark-dns busybox-static
  bind9-dnsutils dnsperf knot libknot-dev curl openssl procps psmisc util-linux strace systemd
  # Builds: each in a user namespace with user-mode networking; gVisor for RUN steps.
  slirp4netns uidmap runsc
  php-cli php-curl php-laravel-framework php-guzzlehttp-guzzle
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all packages present"
fi

# Dedicated system users for the coold children that do not run as root and for the
# broker (hardening/capabilities/<role>.list names each role's user).
for user in coold-front coold-netlink coolify-broker; do
  if ! getent passwd "$user" >/dev/null; then
    echo "install-deps: creating system user $user"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
  fi
done

# A build's network helper (slirp4netns, as the build's unprivileged uid) opens the TUN
# device inside the build's network namespace. udev gives it mode 0666 on a booted
# Debian; containers and machines without udev leave the kernel's 0600.
if [[ -c /dev/net/tun ]] && [[ "$(stat -c %a /dev/net/tun)" != 666 ]]; then
  chmod 0666 /dev/net/tun
fi

#!/usr/bin/env bash
# The two Debian packages for real: lintian finds nothing unexplained; installed into a
# scratch root (an overlay over this machine's own root, in a private mount and network
# namespace, so this host's files, users, dpkg database and firewall stay as they are)
# they create their users, every unit passes `systemd-analyze verify`, the installed
# coold finds its children in /usr/lib/coold and passes its health round; installing
# again changes nothing; a purge leaves nothing behind.
set -euo pipefail

if [[ ${1:-} != --inside ]]; then
  coold_deb=$(realpath "$1") broker_deb=$(realpath "$2") readme=$(realpath "$3")
  echo "== lintian"
  # Errors and warnings fail; every override in the packages carries its reason.
  lintian --fail-on error,warning "$coold_deb" "$broker_deb"
  exec unshare --mount --net --propagation private "$0" --inside "$coold_deb" "$broker_deb" "$readme"
fi
coold_deb=$2 broker_deb=$3

scratch=$(mktemp -d /tmp/coold-pkgtest.XXXXXX)
mount -t tmpfs tmpfs "$scratch"
mkdir "$scratch"/{upper,work,root}
mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/root"
root=$scratch/root
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
cp "$coold_deb" "$broker_deb" "$root/tmp/"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# The scratch root starts as this machine is; packages left there by an earlier install
# on the host itself would hide what an install does.
for pkg in coold coolify-broker; do
  if in_root dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q installed; then
    in_root dpkg --purge "$pkg" >/dev/null
  fi
done
# So are the state directories a coold run on this host made.
rm -rf "$root/etc/coolify" "$root/var/lib/coolify"
for user in coold-front coold-netlink coolify-broker; do
  if in_root getent passwd "$user" >/dev/null; then in_root userdel "$user"; fi
  if in_root getent group "$user" >/dev/null; then in_root groupdel "$user"; fi
done
# What the scratch root holds that this machine's root does not: files, links and
# whiteouts in the overlay's upper layer, and directories the lower layer lacks (the
# overlay copies up every parent of a changed file).
snapshot() {
  (cd "$scratch/upper" && find . \( -path ./tmp -o -path ./run \) -prune -o -print |
    while read -r p; do
      if [[ ! -d $p || ! -d /$p ]]; then echo "$p"; fi
    done | sort)
}
before=$(snapshot)
cp "$root/etc/passwd" "$scratch/passwd.before"
cp "$root/etc/group" "$scratch/group.before"

echo "== dpkg -i"
in_root dpkg -i "/tmp/${coold_deb##*/}" "/tmp/${broker_deb##*/}"
for user in coold-front coold-netlink coolify-broker; do
  in_root getent passwd "$user" >/dev/null || fail "no user $user after install"
done
for f in /usr/sbin/coold /usr/lib/coold/coold-front /usr/lib/coold/coold-netlink \
  /usr/lib/coold/coold-podman /usr/lib/coold/coold-build /usr/lib/coold/builder \
  /usr/bin/coolctl /usr/bin/coolify-policy /usr/sbin/coolify-broker \
  /lib/systemd/system/broker.service /lib/systemd/system/broker.socket \
  /lib/systemd/system/broker-grpc.socket /etc/coolify/coold.env /etc/coolify/broker.env; do
  [[ -e $root$f ]] || fail "$f not installed"
done

# Installing enables nothing: that is the operator's `systemctl enable --now`.
if find "$root/etc/systemd/system" -name 'coold*' -o -name 'coolify*' -o -name 'broker.*' | grep .; then
  fail "a unit was enabled by the install"
fi
# The operator's enable (systemd is not running here: systemctl writes the links offline).
in_root systemctl enable coold.service coolify-mesh-fw.service coolify-mesh-allow.service broker.service
# broker.service's Also= enables both its sockets.
for unit in broker.socket broker-grpc.socket; do
  [[ -L $root/etc/systemd/system/sockets.target.wants/$unit ]] || fail "enabling broker.service did not enable $unit"
done

echo "== every variable in the env files"
# Each COOLD_*/BROKER_* variable of README.md's tables is in its env file, with its default.
readme=$4
vars=$(grep -oE '^\| `(COOLD|BROKER)_[A-Z0-9_]+`( / `(COOLD|BROKER)_[A-Z0-9_]+`)?' "$readme" | grep -oE '(COOLD|BROKER)_[A-Z0-9_]+' | sort -u)
[[ $(wc -l <<<"$vars") -gt 40 ]] || fail "README.md's variable tables not found"
for var in $vars; do
  file=$root/etc/coolify/coold.env
  [[ $var == BROKER_* ]] && file=$root/etc/coolify/broker.env
  grep -q "^#$var=" "$file" || fail "${file##*/} lacks $var"
done

echo "== systemd-analyze verify"
# A warning (an unknown or misspelt setting, a missing binary) fails as an error does.
verify=$(in_root systemd-analyze verify /lib/systemd/system/coold.service \
  /lib/systemd/system/coolify-mesh-fw.service /lib/systemd/system/coolify-mesh-allow.service \
  /lib/systemd/system/broker.service /lib/systemd/system/broker.socket \
  /lib/systemd/system/broker-grpc.socket 2>&1) || { echo "$verify"; fail "systemd-analyze verify"; }
[[ -z $verify ]] || { echo "$verify"; fail "systemd-analyze verify warned"; }

echo "== the installed coold finds its children in /usr/lib/coold"
out=$(in_root env COOLD_HOST_MGMT_IP=127.0.0.1 /usr/sbin/coold --once 2>&1) || {
  echo "$out"
  fail "installed coold --once"
}
grep -q 'health round ok: 4 processes' <<<"$out" || { echo "$out"; fail "no health round"; }

echo "== dpkg -i again (idempotent maintainer scripts)"
in_root dpkg -i "/tmp/${coold_deb##*/}" "/tmp/${broker_deb##*/}"
[[ $(in_root getent passwd coold-front | wc -l) == 1 ]] || fail "user created twice"

echo "== dpkg --purge"
in_root dpkg --purge coolify-broker coold
cmp -s "$root/etc/passwd" "$scratch/passwd.before" || fail "/etc/passwd differs after purge"
cmp -s "$root/etc/group" "$scratch/group.before" || fail "/etc/group differs after purge"
# What changed in the scratch root since before the install, less dpkg's own records
# and the account files' backups (their contents were compared above).
left=$(comm -13 <(echo "$before") <(snapshot) | grep -vE '^\./(var/lib/dpkg|var/log/(dpkg|alternatives)\.log|var/cache/debconf|etc/(passwd|group|shadow|gshadow|subuid|subgid)-?$)' || true)
if [[ -n $left ]]; then
  echo "$left" >&2
  fail "the purge left the paths above behind"
fi
echo "PASS"

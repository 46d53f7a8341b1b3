#!/usr/bin/env bash
# build_deb.sh OUT.deb CONTROL VERSION SRC=DEST...: lays SRC files out at DEST in a
# package tree and builds OUT.deb with dpkg-deb. DEST under DEBIAN/ is package metadata;
# ELF files are stripped and their shared-library dependencies (dpkg-shlibdeps) join the
# control file's Depends (the ${shlibs:Depends} placeholder). Files are root-owned.
set -euo pipefail
out=$1 control=$2 version=$3
shift 3
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
root=$tree/root
mkdir -p "$root/DEBIAN"
elves=()
for entry in "$@"; do
  src=${entry%%=*} dest=${entry#*=}
  mode=0644
  case "$dest" in
    DEBIAN/postinst | DEBIAN/prerm | DEBIAN/postrm | DEBIAN/preinst) mode=0755 ;;
    usr/sbin/* | usr/bin/* | usr/lib/coold/*) mode=0755 ;;
  esac
  install -D -m "$mode" "$src" "$root/$dest"
  if [[ $mode == 0755 && $dest != DEBIAN/* ]]; then
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/$dest"
    elves+=("$root/$dest")
  fi
  if [[ $dest == */changelog ]]; then gzip -9n "$root/$dest"; fi
done

name=$(sed -n 's/^Package: //p' "$control")
shlibs=""
if ((${#elves[@]})); then
  # dpkg-shlibdeps reads a source package's debian/control: a minimal one.
  mkdir -p "$tree/src/debian"
  printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" >"$tree/src/debian/control"
  args=()
  for elf in "${elves[@]}"; do args+=("-e$elf"); done
  shlibs=$(cd "$tree/src" && dpkg-shlibdeps -O "${args[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
fi
arch=$(dpkg --print-architecture)
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
  -e "s/\${shlibs:Depends}/$shlibs/" "$control" >"$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"
# Reproducible: every file dated by the changelog's fixed epoch.
find "$root" -exec touch -h -d @"${SOURCE_DATE_EPOCH:-1764892800}" {} +
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null

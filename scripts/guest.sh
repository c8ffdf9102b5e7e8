#!/usr/bin/env bash
# The tiny guest the labs boot: Debian's own kernel (linux-image-amd64) and a small initramfs
# made here from Debian packages (busybox-static, the kernel's driver modules) and
# scripts/guest/init. Nothing comes from anywhere but Debian's archive, through apt.
#
#   scripts/guest.sh build   build when missing (cached), then print the env lines below
#   scripts/guest.sh env     print the env lines of the build apt resolves now; fails when not built
#   scripts/guest.sh info    print the build's record (package versions, hashes, sizes)
#
# Env lines (export statements, as `scripts/lab.sh env` prints):
#   GUEST_KERNEL   the kernel (vmlinuz) for direct kernel boot (-kernel, <os><kernel>)
#   GUEST_INITRD   the initramfs (-initrd, <os><initrd>)
#   GUEST_CMDLINE  the kernel command line (-append, <os><cmdline>): console on ttyS0
#   GUEST_ID       names this kernel + initramfs pair (changes when either changes)
#
# Cache: ${LVD_GUEST_CACHE:-$HOME/.cache/pulumi-libvirt-domain}/guest-KERNELRELEASE/, holding
# the .deb files, vmlinuz, initrd.img and guest.lock (the package versions apt resolved, with
# their SHA256 and URI). The initramfs is rebuilt when its inputs change (this script,
# scripts/guest/init, scripts/guest/modules, the package versions). Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${LVD_GUEST_CACHE:-$HOME/.cache/pulumi-libvirt-domain}
# console on the first serial port; no reboot loop on a panic; nopat: lets init map the
# vmgenid page (see scripts/guest/init); hot-added memory comes online by itself.
CMDLINE='console=ttyS0 quiet panic=-1 nopat memhp_default_state=online'

log() { printf '[guest] %s\n' "$*" >&2; }
die() { printf '[guest] error: %s\n' "$*" >&2; exit 1; }

# candidate PKG: the version apt would install now ("" when apt knows none).
candidate() {
  apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n1
}

# resolve: sets KPKG KVER (the kernel image package the metapackage depends on), KREL, MVER,
# BVER (busybox-static), DIR. Runs `apt-get update` once when apt knows no candidate.
resolve() {
  MVER=$(candidate linux-image-amd64)
  if [ -z "$MVER" ]; then
    log "apt knows no linux-image-amd64; running apt-get update"
    apt-get update -q >&2 || die "apt-get update failed"
    MVER=$(candidate linux-image-amd64)
    [ -n "$MVER" ] || die "apt has no candidate for linux-image-amd64 even after apt-get update: /etc/apt/sources.list(.d) needs Debian's main archive (deb.debian.org bookworm main)"
  fi
  local dep
  dep=$(apt-cache show --no-all-versions linux-image-amd64 | sed -n 's/^Depends: //p' | head -n1)
  [[ $dep =~ ^(linux-image-[0-9][^ ,]*-amd64)\ \(=\ ([^\)]+)\) ]] ||
    die "linux-image-amd64 $MVER depends on '$dep', not on one linux-image-RELEASE-amd64 (= VERSION)"
  KPKG=${BASH_REMATCH[1]}
  KVER=${BASH_REMATCH[2]}
  KREL=${KPKG#linux-image-}
  BVER=$(candidate busybox-static)
  [ -n "$BVER" ] || die "apt has no candidate for busybox-static"
  DIR=$cache_root/guest-$KREL
}

# inputs_id: a hash of everything the kernel and initramfs are made from.
inputs_id() {
  { cat "$here/guest.sh" "$here/guest/init" "$here/guest/modules"; echo "$KPKG $KVER busybox-static $BVER"; } | sha256sum | cut -c1-12
}

print_env() {
  local id
  id=$KREL-$(cat "$DIR/initrd.id")
  echo "export GUEST_KERNEL='$DIR/vmlinuz'"
  echo "export GUEST_INITRD='$DIR/initrd.img'"
  echo "export GUEST_CMDLINE='$CMDLINE'"
  echo "export GUEST_ID='$id'"
}

# fetch: the three .deb files into $DIR/debs, pinned to the resolved versions; guest.lock
# records name, version, SHA256 and URI of each.
fetch() {
  local want=("linux-image-amd64=$MVER" "$KPKG=$KVER" "busybox-static=$BVER") uris line
  mkdir -p "$DIR/debs"
  # (in an empty directory: apt prints no URI for a file already there)
  local empty
  empty=$(mktemp -d)
  uris=$(cd "$empty" && apt-get download --print-uris "${want[@]}" 2>/dev/null) ||
    die "apt cannot locate ${want[*]} (run apt-get update?)"
  rmdir "$empty"
  [ "$(grep -c . <<<"$uris")" = 3 ] || die "apt gave no download URI for some of ${want[*]}: $uris"
  local lock=$DIR/guest.lock.tmp
  printf '# package version sha256 file uri (as apt resolved them on %s)\n' "$(date -u +%FT%TZ)" >"$lock"
  while read -r line; do
    # 'URI' FILE SIZE SHA256:HEX
    local uri file size sha
    read -r uri file size sha <<<"$line"
    uri=${uri//\'/}
    sha=${sha#SHA256:}
    case $uri in
    http://deb.debian.org/* | https://deb.debian.org/* | http://security.debian.org/* | https://security.debian.org/* | */debian/pool/* | */debian-security/pool/*) ;;
    *) die "apt would fetch $file from $uri, which is not Debian's archive" ;;
    esac
    if [ -f "$DIR/debs/$file" ] && echo "$sha  $DIR/debs/$file" | sha256sum -c --status; then
      log "have $file"
    else
      log "downloading $file ($((size / 1024)) KiB) from $uri"
      (cd "$DIR/debs" && apt-get download -q -o APT::Sandbox::User=root "${want[@]}") >&2 || die "apt-get download ${want[*]} failed"
      echo "$sha  $DIR/debs/$file" | sha256sum -c --status || die "$file does not match the SHA256 apt announced ($sha)"
    fi
    local pkg=${file%%_*} ver
    ver=$(dpkg-deb -f "$DIR/debs/$file" Version)
    printf '%s %s %s %s %s\n' "$pkg" "$ver" "$sha" "$file" "$uri" >>"$lock"
  done <<<"$uris"
  mv "$lock" "$DIR/guest.lock"
}

deb_of() { # PKG: the path of its .deb as guest.lock records it
  local f
  f=$(awk -v p="$1" '$1 == p { print $4 }' "$DIR/guest.lock")
  [ -n "$f" ] && [ -f "$DIR/debs/$f" ] || die "$DIR/guest.lock records no .deb for $1: delete $DIR and build again"
  echo "$DIR/debs/$f"
}

WORK=
build_initrd() {
  local work=$DIR/work.$$ kdir busybox root id
  id=$(inputs_id)
  WORK=$work
  trap 'rm -rf "$WORK"' EXIT
  rm -rf "$work"
  mkdir -p "$work"

  log "unpacking $KPKG $KVER"
  kdir=$work/kernel
  mkdir -p "$kdir"
  dpkg-deb --fsys-tarfile "$(deb_of "$KPKG")" | tar -x -C "$kdir" ./boot ./lib/modules
  [ -f "$kdir/boot/vmlinuz-$KREL" ] || die "$KPKG has no boot/vmlinuz-$KREL"
  mkdir -p "$work/bb"
  dpkg-deb -x "$(deb_of busybox-static)" "$work/bb"
  busybox=$work/bb/bin/busybox
  [ -x "$busybox" ] || die "busybox-static has no bin/busybox"

  local mods=$kdir/lib/modules/$KREL
  log "computing module dependencies (busybox depmod)"
  "$busybox" depmod -b "$kdir" "$KREL" || die "depmod failed on $KREL"

  # The wanted modules and their dependencies, dependencies first (a depth-first walk over
  # modules.dep, whose lines list each module's whole dependency closure).
  local order=() seen=" " name path
  declare -A DEP=()
  local line deps
  while IFS= read -r line; do
    path=${line%%:*}
    deps=${line#"$path:"}
    DEP[$path]=${deps# }
  done <"$mods/modules.dep"
  declare -A BYNAME=()
  for path in "${!DEP[@]}"; do
    name=${path##*/}
    name=${name%.ko}
    BYNAME[${name//-/_}]=$path
  done
  visit() {
    local p=$1 d
    case $seen in *" $p "*) return ;; esac
    seen="$seen$p "
    for d in ${DEP[$p]}; do visit "$d"; done
    order+=("$p")
  }
  while read -r name; do
    name=${name%%#*}
    name=${name//[[:space:]]/}
    [ -n "$name" ] || continue
    if [ -n "${BYNAME[${name//-/_}]:-}" ]; then
      visit "${BYNAME[${name//-/_}]}"
    elif grep -qE "/${name//_/[-_]}\.ko$" "$mods/modules.builtin"; then
      log "module $name: built into $KREL"
    else
      die "module $name (scripts/guest/modules) is neither built into $KREL nor one of its modules"
    fi
  done <"$here/guest/modules"

  log "assembling the initramfs (busybox $BVER, ${#order[@]} modules)"
  root=$work/root
  mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,etc/lvd-guest,"lib/modules/$KREL"}
  cp "$busybox" "$root/bin/busybox"
  for a in $("$busybox" --list); do
    [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
  done
  install -m 0755 "$here/guest/init" "$root/init"
  : >"$root/etc/lvd-guest/modules"
  for path in "${order[@]}"; do
    mkdir -p "$root/lib/modules/$KREL/$(dirname "$path")"
    cp "$mods/$path" "$root/lib/modules/$KREL/$path"
    echo "$KREL/$path" >>"$root/etc/lvd-guest/modules"
  done
  # The console the kernel opens for init before /dev is mounted (needs root; without it
  # the kernel warns and init opens /dev/console itself).
  mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || log "cannot mknod dev/console (not root?): init opens it later"
  # Same inputs, same bytes: fixed times and owner, sorted names, no gzip timestamp.
  find "$root" -exec touch -h -d @0 {} +
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0 --ignore-devno --renumber-inodes 2>/dev/null) | gzip -9 -n >"$work/initrd.img"
  [ -s "$work/initrd.img" ] || die "could not pack the initramfs"

  cp "$kdir/boot/vmlinuz-$KREL" "$work/vmlinuz"
  cp "$kdir/boot/config-$KREL" "$DIR/config"
  mv "$work/vmlinuz" "$DIR/vmlinuz"
  mv "$work/initrd.img" "$DIR/initrd.img"
  echo "$id" >"$DIR/initrd.id"
  rm -rf "$work"
  trap - EXIT
  log "built $DIR/initrd.img: $(stat -c %s "$DIR/initrd.img") bytes; vmlinuz: $(stat -c %s "$DIR/vmlinuz") bytes"
}

built() {
  [ -f "$DIR/vmlinuz" ] && [ -f "$DIR/initrd.img" ] && [ -f "$DIR/guest.lock" ] &&
    [ "$(cat "$DIR/initrd.id" 2>/dev/null)" = "$(inputs_id)" ] &&
    grep -q "^$KPKG $KVER " "$DIR/guest.lock" && grep -q "^busybox-static $BVER " "$DIR/guest.lock"
}

cmd_build() {
  command -v apt-get >/dev/null || die "apt-get is required (a Debian machine)"
  resolve
  if built; then print_env; return 0; fi
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w 600 9 || die "another build held $DIR/.lock for 10 minutes"
  if ! built; then
    local t0=$SECONDS
    log "building the guest: $KPKG $KVER, busybox-static $BVER, into $DIR"
    fetch
    build_initrd
    log "done in $((SECONDS - t0)) s"
  fi
  print_env
}

case ${1:-} in
build) cmd_build ;;
env)
  resolve
  built || die "the guest for $KREL is not built (or its inputs changed): run scripts/guest.sh build"
  print_env
  ;;
info)
  resolve
  built || die "the guest for $KREL is not built: run scripts/guest.sh build"
  cat "$DIR/guest.lock"
  echo "vmlinuz $(stat -c %s "$DIR/vmlinuz") bytes"
  echo "initrd.img $(stat -c %s "$DIR/initrd.img") bytes, inputs $(cat "$DIR/initrd.id")"
  echo "cmdline $CMDLINE"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
  ;;
esac

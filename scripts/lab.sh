#!/usr/bin/env bash
# Real libvirt + QEMU for the project's tests (TCG, no KVM needed).
#
#   scripts/lab.sh up [host|new|all]   install (once) and start the labs (default all); prints the env lines tests read
#   scripts/lab.sh env     print the env lines (export statements) without starting anything
#   scripts/lab.sh status  say which labs answer
#   scripts/lab.sh down [host|new|all]    stop the daemons this script started (by recorded PID, never by name)
#   scripts/lab.sh crash host|new          SIGKILL that lab's libvirtd (the child of its recorded tini), as a crash would
#
# Labs:
#   host: Debian 12's libvirt 9.0 + QEMU 7.2 (no <hwuuid>: the passthrough fallback path)
#   new:  libvirt 12.x + QEMU 11.x in a chroot (trixie-backports, else sid): native <hwuuid>
#
# Everything lives under $LAB_DIR (default /var/lib/pulumi-libvirt-domain-lab). Images shared
# by both labs go in $LAB_DIR/images, bound at the same path inside the chroot.
set -euo pipefail

LAB_DIR=${LAB_DIR:-/var/lib/pulumi-libvirt-domain-lab}
ROOT=$LAB_DIR/chroot
IMAGES=$LAB_DIR/images
RUN=$LAB_DIR/run
MIRROR=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_PKGS=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils libxml2-utils tini mmdebstrap debian-archive-keyring)
CHROOT_PKGS=libvirt-daemon,libvirt-daemon-driver-qemu,libvirt-clients,qemu-system-x86,qemu-utils,libxml2-utils

log() { printf '[lab] %s\n' "$*" >&2; }

QEMU_CONF='user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
'

host_uri() { echo "qemu:///system"; }
new_uri() { echo "qemu+unix:///system?socket=$ROOT/run/libvirt/libvirt-sock"; }

print_env() {
  echo "export LAB_HOST_URI='$(host_uri)'"
  echo "export LAB_NEW_URI='$(new_uri)'"
  echo "export LAB_IMAGE_DIR='$IMAGES'"
  echo "export LAB_CHROOT='$ROOT'"
  echo "export LAB_HOST_QEMU='/usr/bin/qemu-system-x86_64'"
  echo "export LAB_NEW_QEMU='$LAB_DIR/bin/qemu-system-x86_64-new'"
}

install_host() {
  local missing=()
  for p in "${HOST_PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing host packages: ${missing[*]}"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin libvirt-qemu
  mkdir -p /etc/libvirt
  printf '%s' "$QEMU_CONF" > /etc/libvirt/qemu.conf
}

build_chroot() {
  if [ -x "$ROOT/usr/sbin/libvirtd" ]; then return 0; fi
  local tmp=$ROOT.partial suite
  rm -rf "$tmp"
  for suite in trixie-backports sid; do
    log "building the libvirt 12.x chroot from $suite (about a minute, ~330 MB)"
    local args=(--variant=minbase --include="$CHROOT_PKGS" --aptopt='Acquire::Check-Valid-Until "false"')
    if [ "$suite" = trixie-backports ]; then
      # backports on a stable base; prefer backports' libvirt/qemu
      args+=(--aptopt='APT::Default-Release "trixie-backports"')
      if mmdebstrap "${args[@]}" trixie "$tmp" "deb $MIRROR trixie main" "deb $MIRROR trixie-backports main" >&2 &&
         chroot "$tmp" dpkg-query -W -f='${Version}' libvirt-daemon | grep -qE '^(1[2-9]|[2-9][0-9])\.'; then
        break
      fi
    else
      mmdebstrap "${args[@]}" sid "$tmp" "deb $MIRROR sid main" >&2 && break
    fi
    log "$suite did not give libvirt >= 12; trying the next suite"
    rm -rf "$tmp"
  done
  [ -x "$tmp/usr/sbin/libvirtd" ] || { log "could not build the chroot"; exit 1; }
  chroot "$tmp" getent passwd libvirt-qemu >/dev/null || chroot "$tmp" useradd --system --no-create-home --shell /usr/sbin/nologin libvirt-qemu
  mv "$tmp" "$ROOT"
}

configure_chroot() {
  mkdir -p "$ROOT/etc/libvirt" "$ROOT$IMAGES" "$LAB_DIR/bin"
  printf '%s' "$QEMU_CONF" > "$ROOT/etc/libvirt/qemu.conf"
  # The chroot's QEMU (11.x) run on the host, without libvirt: for the QEMU-direct backend.
  # Its own loader and libraries, its firmware (-L) and its modules, never the host's 7.2 ones.
  cat > "$LAB_DIR/bin/qemu-system-x86_64-new" <<WRAP
#!/bin/sh
R='$ROOT'
export QEMU_MODULE_DIR="\$R/usr/lib/x86_64-linux-gnu/qemu"
exec "\$R/lib64/ld-linux-x86-64.so.2" --library-path "\$R/usr/lib/x86_64-linux-gnu:\$R/lib/x86_64-linux-gnu" "\$R/usr/bin/qemu-system-x86_64" -L "\$R/usr/share/qemu" "\$@"
WRAP
  chmod +x "$LAB_DIR/bin/qemu-system-x86_64-new"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # uri
  local i
  for i in $(seq 1 100); do
    virsh -c "$1" version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "libvirt at $1 did not answer in 20 s"; return 1
}

start_host() {
  if pid_alive "$RUN/host.pid" && virsh -c "$(host_uri)" version >/dev/null 2>&1; then return 0; fi
  if [ -S /run/libvirt/libvirt-sock ] && virsh -c "$(host_uri)" version >/dev/null 2>&1; then
    log "a libvirtd not started by this script already serves $(host_uri); using it"; return 0
  fi
  mkdir -p "$RUN"
  setsid tini -s -- libvirtd > "$RUN/host.log" 2>&1 < /dev/null &
  echo $! > "$RUN/host.pid"
  wait_for "$(host_uri)"
}

start_new() {
  if pid_alive "$RUN/new.pid" && virsh -c "$(new_uri)" version >/dev/null 2>&1; then return 0; fi
  mkdir -p "$RUN"
  rm -f "$ROOT/run/libvirt/libvirt-sock"
  # A private mount namespace: the mounts vanish with the daemon.
  setsid tini -s -- unshare --mount --propagation private -- sh -c '
    set -e
    root=$1; images=$2
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount --bind "$images" "$root$images"
    mkdir -p "$root/run" "$root/tmp"
    exec chroot "$root" /usr/sbin/libvirtd
  ' lab "$ROOT" "$IMAGES" > "$RUN/new.log" 2>&1 < /dev/null &
  echo $! > "$RUN/new.pid"
  wait_for "$(new_uri)"
}

stop_one() { # name
  local f=$RUN/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

case "${1:-}" in
  up)
    which=${2:-all}
    install_host
    mkdir -p "$IMAGES"
    start_host
    if [ "$which" != host ]; then
      build_chroot
      configure_chroot
      start_new
    fi
    log "host lab: $(virsh -c "$(host_uri)" version --daemon 2>/dev/null | grep -m1 -i 'running' || true)"
    log "new lab:  $(virsh -c "$(new_uri)" version --daemon 2>/dev/null | grep -m1 -i 'running' || true)"
    print_env
    ;;
  env) print_env ;;
  status)
    for u in "$(host_uri)" "$(new_uri)"; do
      if virsh -c "$u" version >/dev/null 2>&1; then echo "up   $u"; else echo "down $u"; fi
    done
    ;;
  down)
    case "${2:-all}" in
      host) stop_one host ;;
      new) stop_one new ;;
      *) stop_one new; stop_one host ;;
    esac
    ;;
  crash)
    f=$RUN/${2:?host or new}.pid
    [ -f "$f" ] || { log "the $2 lab was not started by this script"; exit 1; }
    tini_pid=$(cat "$f")
    # tini's only child is libvirtd (unshare, sh and chroot exec into it).
    for child in $(cat "/proc/$tini_pid/task/$tini_pid/children" 2>/dev/null); do kill -KILL "$child"; done
    for _ in $(seq 1 50); do kill -0 "$tini_pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$f"
    ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac

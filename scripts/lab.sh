#!/usr/bin/env bash
# Real libvirt + QEMU for the project's tests (TCG, no KVM needed).
#
#   scripts/lab.sh up [host|new|all]   install what is missing and start the labs (default all); prints the env lines tests read
#   scripts/lab.sh env     print the env lines (export statements) without starting anything
#   scripts/lab.sh status  say which labs answer
#   scripts/lab.sh down [host|new|all]    stop the daemons this script started and undo what it changed on the machine
#   scripts/lab.sh crash host|new          SIGKILL that lab's libvirtd (the child of its recorded tini), as a crash would
#
# Labs:
#   host: qemu:///system. A libvirt this host already has (a libvirtd answering that this script did
#         not start) is used as it is: nothing is written under /etc and no daemon is started. A host
#         libvirt that is set up but not running is an error naming how to start it. Otherwise the
#         lab runs Debian 12's libvirt 9.0 + QEMU 7.2 itself (no <hwuuid>: the passthrough path).
#   new:  libvirt 12.x + QEMU 11.x in a chroot (trixie-backports, else sid): native <hwuuid>
#   ssh:  the new lab again, as a remote host: an OpenSSH server from the chroot (Debian's archive) runs
#         chrooted on 127.0.0.1:$LAB_SSH_PORT (default 2222), key-only, and libvirt's ssh transport
#         reaches the 12.x libvirtd through it (LAB_SSH_URI). Its storage pool `pld-pool` lives in
#         /srv/pld-pool inside the chroot, a path that does not exist on the host.
#
# The lab never writes its settings into /etc. Its libvirtd runs in a private mount namespace where
# $LAB_DIR/host/etc-libvirt is bound on /etc/libvirt (its qemu.conf, and the domains it defines) and,
# when this host has no `libvirt-qemu` user, copies of /etc/passwd and /etc/group that add one are
# bound on those files; the binds vanish with the daemon. What the lab changes outside $LAB_DIR is
# listed in $LAB_DIR/manifest: the packages it installed (`down` leaves them installed), the daemon
# it runs (with its sockets in /run/libvirt), /etc/libvirt when it had to create that mount point.
#
# Everything else lives under $LAB_DIR (default /var/lib/pulumi-libvirt-domain-lab). Images shared
# by both labs go in $LAB_DIR/images, bound at the same path inside the chroot. A daemon's pid file
# ($LAB_DIR/run/NAME.pid) comes with NAME.id: its start time (field 22 of /proc/PID/stat) and
# command line. `down` and `crash` signal a pid only while it is still that process; a stale pid
# file (the process is gone, or its pid was reused, e.g. after a reboot) is removed with a message.
set -euo pipefail

LAB_DIR=${LAB_DIR:-/var/lib/pulumi-libvirt-domain-lab}
ROOT=$LAB_DIR/chroot
IMAGES=$LAB_DIR/images
RUN=$LAB_DIR/run
HOSTCFG=$LAB_DIR/host
MANIFEST=$LAB_DIR/manifest
MIRROR=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What each part needs on the host: virsh and qemu-img always; the lab's own libvirtd; the chroot
# lab (the test suites also run the host's QEMU directly, without libvirt).
CLIENT_PKGS=(libvirt-clients qemu-utils)
DAEMON_PKGS=(libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 tini)
NEW_PKGS=(tini mmdebstrap debian-archive-keyring qemu-system-x86 libxml2-utils)
CHROOT_PKGS=libvirt-daemon,libvirt-daemon-driver-qemu,libvirt-clients,qemu-system-x86,qemu-utils,libxml2-utils,ovmf,swtpm,swtpm-tools
# UEFI firmware (OVMF_CODE*.fd, OVMF_VARS*.fd in /usr/share/OVMF, and QEMU's firmware descriptors
# in /usr/share/qemu/firmware) for EFI guests: on the host (host lab, QEMU-direct) and in the chroot;
# swtpm, the TPM emulator the QEMU-direct backend starts beside QEMU for <tpm><backend type='emulator'>,
# and swtpm-tools (swtpm_setup, which makes a new TPM as libvirt does) on the host: the chroot's QEMU
# 11.x runs on the host for QEMU-direct too (the chroot has its own, for libvirt 12.x's TPMs).
FIRMWARE_PKGS=(ovmf swtpm swtpm-tools)
# The sockets a libvirt for qemu:///system listens on.
SYSTEM_SOCKETS=(/run/libvirt/libvirt-sock /run/libvirt/virtqemud-sock)
# The ssh lab: what the chroot needs on top of CHROOT_PKGS (an sshd, libvirt's storage driver), the
# client side on the host ($SSH_DIR: key pair, pinned known_hosts, ssh_config, the ssh wrapper libvirt
# runs) and the server side inside the chroot ($SSHD_DIR, a path in the chroot's view).
SSH_CHROOT_PKGS=(openssh-server libvirt-daemon-driver-storage)
SSH_PORT=${LAB_SSH_PORT:-2222}
SSH_DIR=$LAB_DIR/ssh
SSHD_DIR=/var/lib/pld-lab-sshd
NEW_POOL=pld-pool
NEW_POOL_DIR=/srv/pld-pool

log() { printf '[lab] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

QEMU_CONF='user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
'

host_uri() { echo "qemu:///system"; }
new_uri() { echo "qemu+unix:///system?socket=$ROOT/run/libvirt/libvirt-sock"; }
# libvirt's ssh transport has no known_hosts parameter (only libssh/libssh2 have): `command=` names a
# wrapper that runs ssh with the lab's own ssh_config (-F: no ~/.ssh/config, no /etc/ssh/ssh_config).
ssh_uri() { echo "qemu+ssh://root@127.0.0.1:$SSH_PORT/system?command=$SSH_DIR/ssh&keyfile=$SSH_DIR/id_ed25519&no_tty=1&no_verify=0"; }

print_env() {
  echo "export LAB_HOST_URI='$(host_uri)'"
  echo "export LAB_NEW_URI='$(new_uri)'"
  echo "export LAB_IMAGE_DIR='$IMAGES'"
  echo "export LAB_CHROOT='$ROOT'"
  echo "export LAB_HOST_QEMU='/usr/bin/qemu-system-x86_64'"
  echo "export LAB_NEW_QEMU='$LAB_DIR/bin/qemu-system-x86_64-new'"
  echo "export LAB_SSH_URI='$(ssh_uri)'"
  echo "export LAB_NEW_POOL='$NEW_POOL'"
  echo "export LAB_NEW_POOL_DIR='$NEW_POOL_DIR'"
}

# ---- the manifest: what the lab changed outside $LAB_DIR, one "KIND<TAB>WHAT" a line ----------
manifest_has() { [ -f "$MANIFEST" ] && grep -qxF "$1	$2" "$MANIFEST"; }
manifest_add() {
  manifest_has "$1" "$2" && return 0
  mkdir -p "$LAB_DIR"
  [ -f "$MANIFEST" ] || printf '# What scripts/lab.sh changed on this machine outside %s; `lab.sh down` undoes all but the packages.\n' "$LAB_DIR" > "$MANIFEST"
  printf '%s\t%s\n' "$1" "$2" >> "$MANIFEST"
}
manifest_del() {
  [ -f "$MANIFEST" ] || return 0
  grep -vxF "$1	$2" "$MANIFEST" > "$MANIFEST.tmp" || true
  mv "$MANIFEST.tmp" "$MANIFEST"
}
manifest_list() { [ -f "$MANIFEST" ] && sed -n "s/^$1	//p" "$MANIFEST" || true; }

# ---- packages --------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

ensure_pkgs() { # PKG... : installs the missing ones, says which, records every package that came in
  local missing=() p before after new
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing missing packages: ${missing[*]}"
  before=$(dpkg-query -W -f='${Package}:${Architecture} ${Status}\n' | sed -n 's/ install ok installed$//p' | sort)
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  after=$(dpkg-query -W -f='${Package}:${Architecture} ${Status}\n' | sed -n 's/ install ok installed$//p' | sort)
  new=$(comm -13 <(echo "$before") <(echo "$after"))
  for p in $new; do manifest_add package "$p"; done
  log "installed $(echo "$new" | wc -w) packages (listed in $MANIFEST; \`down\` leaves them installed): $(echo $new)"
}

ensure_client_pkgs() { # virsh and qemu-img; on a host whose libvirt is set up, only said, never installed
  local missing=() p
  for p in "${CLIENT_PKGS[@]}"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  if ! own_pid host >/dev/null && { [ -n "$(system_libvirt)" ] || { [ -S /run/libvirt/libvirt-sock ] && ! manifest_has daemon host; }; }; then
    die "libvirt is set up on this host, and the lab installs nothing on such a host (a package install writes under /etc): install what is missing yourself (apt-get install --no-install-recommends ${missing[*]}) and run this again"
  fi
  ensure_pkgs "${CLIENT_PKGS[@]}"
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
  # A chroot built before the lab wanted UEFI firmware or a TPM emulator gets the chroot's own ovmf,
  # swtpm and swtpm-tools (libvirt 12.x runs swtpm and swtpm_setup for <tpm><backend type='emulator'>);
  # what they add is the chroot's business, not the machine's.
  local missing=() p
  for p in ovmf swtpm swtpm-tools; do
    chroot "$ROOT" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} in the chroot"
    chroot "$ROOT" apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  # libvirt runs swtpm_setup as tss, which signs a new TPM's certificates with the local CA in
  # /var/lib/swtpm-localca: swtpm-tools makes that directory tss's, and a swtpm_setup once run there
  # as root leaves root's files (its lock first), after which every new TPM fails ("Need read/write
  # rights on /var/lib/swtpm-localca/.lock.swtpm-localca for user tss"). They are given back to tss.
  if [ -d "$ROOT/var/lib/swtpm-localca" ] && chroot "$ROOT" getent passwd tss >/dev/null; then
    chroot "$ROOT" chown -R tss:root /var/lib/swtpm-localca
  fi
}

ensure_firmware_pkgs() { # ovmf and swtpm on the host; never installed on a host whose libvirt is set up (only said: EFI and TPM tests then fail naming it)
  local missing=() p
  for p in "${FIRMWARE_PKGS[@]}"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  if ! manifest_has daemon host && [ -n "$(system_libvirt)" ]; then
    log "libvirt is set up on this host, and the lab installs nothing on such a host: the UEFI and TPM tests need ${missing[*]} (apt-get install --no-install-recommends ${missing[*]})"
    return 0
  fi
  ensure_pkgs "${FIRMWARE_PKGS[@]}"
}

# ---- our processes: pid file + identity ------------------------------------------------------
proc_start() { # PID -> field 22 of /proc/PID/stat (start time, clock ticks after boot)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  set -f
  # shellcheck disable=SC2086
  set -- ${stat##*) }
  set +f
  echo "${20}"
}
proc_cmdsum() { sha256sum < "/proc/$1/cmdline" 2>/dev/null | cut -d' ' -f1; }
proc_cmd() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | sed 's/ $//' | cut -c1-160; }
same_process() { [ "$(proc_start "$1" 2>/dev/null)" = "$2" ]; } # PID START

record_pid() { # NAME PID : waits for tini's exec, then writes NAME.id and NAME.pid
  local i
  for i in $(seq 1 100); do
    [ "$(tr '\0' '\n' < "/proc/$2/cmdline" 2>/dev/null | head -n1)" = tini ] && break
    [ -d "/proc/$2" ] || die "the $1 lab's daemon (pid $2) exited at once; see $RUN/$1.log"
    sleep 0.05
  done
  [ "$(tr '\0' '\n' < "/proc/$2/cmdline" 2>/dev/null | head -n1)" = tini ] || die "the $1 lab's daemon (pid $2) did not exec tini in 5 s; see $RUN/$1.log"
  printf 'pid %s\nstart %s\ncmdline-sha256 %s\ncmdline %s\n' "$2" "$(proc_start "$2")" "$(proc_cmdsum "$2")" "$(proc_cmd "$2")" > "$RUN/$1.id"
  # The pid file holds the pid alone, as it always did.
  echo "$2" > "$RUN/$1.pid"
}

close_inherited_fds() { # a daemon keeps none of our descriptors but 0-2: not the lab lock a caller's flock holds
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] && [ "$fd" != 255 ]; then eval "exec $fd>&-"; fi
  done
}

stale() { # NAME WHY
  log "stale pid file $RUN/$1.pid: $2; removed it, signalled nothing"
  rm -f "$RUN/$1.pid" "$RUN/$1.id"
}

legacy_match() { # NAME PID : the exact process an earlier lab.sh (pid file without NAME.id) started
  local cmd
  cmd=$(tr '\0' ' ' < "/proc/$2/cmdline" 2>/dev/null) || return 1
  case $1 in
    host) [ "$cmd" = "tini -s -- libvirtd " ] ;;
    new) [[ $cmd == "tini -s -- unshare --mount --propagation private -- sh -c "*"chroot \"\$root\" /usr/sbin/libvirtd"*" lab $ROOT $IMAGES " ]] ;;
    *) return 1 ;; # every other daemon (ssh) has always had its NAME.id
  esac
}

own_pid() { # NAME : prints the pid when $RUN/NAME.pid is still the process this script started
  local f=$RUN/$1.pid id=$RUN/$1.id pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || { stale "$1" "it holds '$pid', not a pid"; return 1; }
  [ -d "/proc/$pid" ] || { stale "$1" "no process $pid runs (it stopped, crashed, or the machine rebooted)"; return 1; }
  if [ -f "$id" ] && [ "$(sed -n 's/^pid //p' "$id")" = "$pid" ]; then
    if [ "$(proc_start "$pid")" != "$(sed -n 's/^start //p' "$id")" ] || [ "$(proc_cmdsum "$pid")" != "$(sed -n 's/^cmdline-sha256 //p' "$id")" ]; then
      stale "$1" "pid $pid now belongs to another process ($(proc_cmd "$pid")), not the one the lab started ($(sed -n 's/^cmdline //p' "$id" | cut -c1-60)...)"
      return 1
    fi
  elif legacy_match "$1" "$pid"; then
    record_pid "$1" "$pid" # a pid file written by an earlier lab.sh: record the identity now
  else
    stale "$1" "pid $pid now belongs to another process ($(proc_cmd "$pid")), not a libvirtd the lab started"
    return 1
  fi
  echo "$pid"
}

stop_pid() { # NAME PID : TERM, then KILL after 5 s, each only while PID is still that process
  local start
  start=$(proc_start "$2") || return 0
  kill -TERM "$2" 2>/dev/null || true
  for _ in $(seq 1 50); do same_process "$2" "$start" || return 0; sleep 0.1; done
  log "the $1 lab's daemon (pid $2) did not stop in 5 s after SIGTERM; sending SIGKILL"
  same_process "$2" "$start" && kill -KILL "$2" 2>/dev/null || true
  for _ in $(seq 1 50); do same_process "$2" "$start" || return 0; sleep 0.1; done
  die "the $1 lab's daemon (pid $2) did not exit after SIGKILL"
}

wait_for() { # uri
  local i
  for i in $(seq 1 100); do
    virsh -c "$1" version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "libvirt at $1 did not answer in 20 s"; return 1
}

answers() { virsh -c "$1" version >/dev/null 2>&1; }

# ---- the host lab ------------------------------------------------------------------------------
system_libvirt() { # prints why this host has a libvirt set-up of its own, or nothing
  local f d n
  if installed libvirt-daemon-system; then echo "the package libvirt-daemon-system is installed"; return; fi
  for f in /etc/libvirt/libvirtd.conf /etc/libvirt/virtqemud.conf; do
    [ -e "$f" ] && { echo "$f exists"; return; }
  done
  if [ -e /etc/libvirt/qemu.conf ] && ! printf '%s' "$QEMU_CONF" | cmp -s - /etc/libvirt/qemu.conf; then
    echo "/etc/libvirt/qemu.conf exists and is not the lab's"; return
  fi
  for d in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
    for n in libvirtd.service libvirtd.socket virtqemud.service virtqemud.socket; do
      [ -e "$d/$n" ] && { echo "$d/$n exists"; return; }
    done
  done
  [ -e /etc/init.d/libvirtd ] && { echo "/etc/init.d/libvirtd exists"; return; }
  if ! manifest_has daemon host; then
    for f in "${SYSTEM_SOCKETS[@]}"; do [ -S "$f" ] && { echo "the socket $f exists"; return; }; done
  fi
  return 0
}

how_to_start() {
  if [ -d /run/systemd/system ]; then
    if [ -e /lib/systemd/system/virtqemud.socket ] || [ -e /usr/lib/systemd/system/virtqemud.socket ]; then echo "systemctl start virtqemud.socket"
    else echo "systemctl start libvirtd"; fi
  elif [ -e /etc/init.d/libvirtd ]; then echo "service libvirtd start"
  else echo "systemctl start libvirtd, or service libvirtd start, as this host's init does it"
  fi
}

start_host() {
  local pid why
  if pid=$(own_pid host); then
    wait_for "$(host_uri)" || die "the host lab's libvirtd (pid $pid) runs but does not answer; see $RUN/host.log"
    return 0
  fi
  if answers "$(host_uri)"; then
    log "$(host_uri) is served by a libvirtd this script did not start: using it as it is (nothing written under /etc, no daemon started)"
    return 0
  fi
  why=$(system_libvirt)
  if [ -n "$why" ]; then
    die "libvirt is set up on this host ($why) but nothing answers at $(host_uri). The lab uses a host's own libvirt as it is and starts no second daemon: start it ($(how_to_start)) and run this again."
  fi
  if [ -e /etc/libvirt/qemu.conf ]; then
    log "note: /etc/libvirt/qemu.conf holds the settings an earlier lab.sh wrote there; the lab no longer reads it (rm /etc/libvirt/qemu.conf gives Debian's /etc back)"
  fi
  ensure_pkgs "${DAEMON_PKGS[@]}"
  # The lab's settings, seen by the lab's libvirtd only (bound in its private mount namespace).
  mkdir -p "$RUN" "$HOSTCFG/etc-libvirt"
  printf '%s' "$QEMU_CONF" > "$HOSTCFG/etc-libvirt/qemu.conf"
  rm -f "$HOSTCFG/passwd" "$HOSTCFG/group"
  if ! getent passwd libvirt-qemu >/dev/null || ! getent group libvirt-qemu >/dev/null; then
    # libvirtd resolves its default user before it reads qemu.conf: it must exist in its view.
    local id=999
    while [ "$id" -gt 100 ] && { getent passwd "$id" >/dev/null || getent group "$id" >/dev/null; }; do id=$((id - 1)); done
    cp /etc/passwd "$HOSTCFG/passwd"
    cp /etc/group "$HOSTCFG/group"
    getent passwd libvirt-qemu >/dev/null || echo "libvirt-qemu:x:$id:$id:Libvirt Qemu (lab):/nonexistent:/usr/sbin/nologin" >> "$HOSTCFG/passwd"
    getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:$id:" >> "$HOSTCFG/group"
  fi
  if [ ! -d /etc/libvirt ]; then
    mkdir /etc/libvirt # a mount point only; nothing is written in it
    manifest_add mkdir /etc/libvirt
  fi
  remove_lab_sockets
  manifest_add daemon host
  (close_inherited_fds; exec setsid tini -s -- unshare --mount --propagation private -- sh -c '
    set -e
    cfg=$1
    mount --bind "$cfg/etc-libvirt" /etc/libvirt
    if [ -f "$cfg/passwd" ]; then mount --bind "$cfg/passwd" /etc/passwd; mount --bind "$cfg/group" /etc/group; fi
    exec libvirtd
  ' lab "$HOSTCFG") > "$RUN/host.log" 2>&1 < /dev/null &
  record_pid host $!
  wait_for "$(host_uri)"
}

remove_lab_sockets() { # the sockets a crashed lab libvirtd left in /run/libvirt (nothing answers on them)
  local s
  manifest_has daemon host && ! answers "$(host_uri)" || return 0
  for s in /run/libvirt/libvirt-sock /run/libvirt/libvirt-sock-ro /run/libvirt/libvirt-admin-sock; do
    if [ -S "$s" ]; then rm -f "$s"; log "removed $s (left by the lab's libvirtd)"; fi
  done
}

stop_host() {
  local pid
  if pid=$(own_pid host); then stop_pid host "$pid"; fi
  rm -f "$RUN/host.pid" "$RUN/host.id"
  # libvirtd removes its sockets when it stops; a crash leaves them.
  remove_lab_sockets
  manifest_del daemon host
  if manifest_has mkdir /etc/libvirt; then
    if rmdir /etc/libvirt 2>/dev/null; then log "removed /etc/libvirt (the lab had created it)"; manifest_del mkdir /etc/libvirt
    else log "/etc/libvirt (created by the lab) is not empty any more: left in place"; fi
  fi
  local pkgs
  pkgs=$(manifest_list package)
  [ -z "$pkgs" ] || log "packages the lab installed stay installed (listed in $MANIFEST): $(echo $pkgs)"
}

start_chrooted() { # NAME CMD... : runs CMD in the chroot as the lab daemon NAME (log $RUN/NAME.log, pid recorded)
  # A private mount namespace: /proc, /sys, /dev and the images directory are mounted into the
  # chroot there, and the mounts vanish with the daemon.
  local name=$1
  shift
  (close_inherited_fds; exec setsid tini -s -- unshare --mount --propagation private -- sh -c '
    set -e
    root=$1; images=$2; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount --bind "$images" "$root$images"
    mkdir -p "$root/run" "$root/tmp"
    exec chroot "$root" "$@"
  ' "lab-$name" "$ROOT" "$IMAGES" "$@") > "$RUN/$name.log" 2>&1 < /dev/null &
  record_pid "$name" $!
}

start_new() {
  local pid
  if pid=$(own_pid new); then
    wait_for "$(new_uri)" || die "the new lab's libvirtd (pid $pid) runs but does not answer; see $RUN/new.log"
    return 0
  fi
  mkdir -p "$RUN"
  rm -f "$ROOT/run/libvirt/libvirt-sock"
  # A private mount namespace: the mounts vanish with the daemon.
  start_chrooted new /usr/sbin/libvirtd
  wait_for "$(new_uri)"
}

stop_new() {
  local pid
  if pid=$(own_pid new); then stop_pid new "$pid"; fi
  rm -f "$RUN/new.pid" "$RUN/new.id"
}

# ---- the ssh lab: the 12.x libvirtd as a remote host over qemu+ssh:// ----------------------------
ensure_chroot_ssh_pkgs() { # installs SSH_CHROOT_PKGS into the chroot from Debian's archive, no service started
  local missing=() p
  for p in "${SSH_CHROOT_PKGS[@]}"; do
    chroot "$ROOT" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing into the chroot: ${missing[*]}"
  # No package may start a service: the lab starts its sshd itself, on its own port.
  local policy=$ROOT/usr/sbin/policy-rc.d rc=0
  [ ! -e "$policy" ] || mv "$policy" "$policy.lab-saved"
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  { chroot "$ROOT" apt-get update -q >&2 &&
    DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } || rc=$?
  rm -f "$policy"
  [ ! -e "$policy.lab-saved" ] || mv "$policy.lab-saved" "$policy"
  [ "$rc" = 0 ] || die "could not install ${missing[*]} into the chroot $ROOT (apt-get exited $rc)"
}

new_has_storage() { # the running 12.x libvirtd has its storage driver (it loads drivers when it starts)
  local err
  err=$(virsh -c "$(new_uri)" pool-list --all 2>&1 >/dev/null) || true
  case $err in *"not supported by the connection driver"*) return 1 ;; esac
}

ensure_new_pool() { # the persistent dir pool NEW_POOL at NEW_POOL_DIR, inside the chroot only
  local pid u
  u=$(new_uri)
  if ! new_has_storage; then
    pid=$(own_pid new) || die "the 12.x libvirtd at $u has no storage driver and was not started by this script: restart it after installing libvirt-daemon-driver-storage in $ROOT"
    log "restarting the new lab's libvirtd (pid $pid): it started before its storage driver was installed (its guests keep running)"
    stop_pid new "$pid"
    rm -f "$RUN/new.pid" "$RUN/new.id"
    start_new
    new_has_storage || die "the 12.x libvirtd at $u still has no storage driver after a restart; see $RUN/new.log"
  fi
  if ! virsh -q -c "$u" pool-info "$NEW_POOL" >/dev/null 2>&1; then
    virsh -q -c "$u" pool-define-as "$NEW_POOL" dir --target "$NEW_POOL_DIR" >/dev/null
    virsh -q -c "$u" pool-autostart "$NEW_POOL" >/dev/null
  fi
  if [ "$(virsh -q -c "$u" pool-info "$NEW_POOL" | sed -n 's/^State: *//p')" != running ]; then
    virsh -q -c "$u" pool-build "$NEW_POOL" >/dev/null # mkdir inside the chroot, by libvirt
    virsh -q -c "$u" pool-start "$NEW_POOL" >/dev/null
  fi
}

configure_ssh() { # key pair and pinned known_hosts on the client side; sshd's config, host key, authorized_keys in the chroot
  local sd=$ROOT$SSHD_DIR
  mkdir -p "$SSH_DIR" "$sd"
  chmod 700 "$SSH_DIR" "$sd"
  [ -f "$SSH_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C pld-lab-client -f "$SSH_DIR/id_ed25519"
  [ -f "$sd/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C pld-lab-host -f "$sd/ssh_host_ed25519_key"
  # Only the lab's client key, and it may do nothing but run a command (no pty, no forwarding).
  printf 'restrict %s\n' "$(cat "$SSH_DIR/id_ed25519.pub")" > "$sd/authorized_keys"
  chmod 600 "$sd/authorized_keys"
  # The host key is pinned: the lab wrote it, nothing learns it on first use.
  printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$sd/ssh_host_ed25519_key.pub")" > "$SSH_DIR/known_hosts"
  cat > "$sd/sshd_config.new" <<CONF
# The lab's sshd (scripts/lab.sh), chrooted in $ROOT: key-only root login from 127.0.0.1 for libvirt's ssh transport.
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/ssh_host_ed25519_key
AuthorizedKeysFile $SSHD_DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
UsePAM no
PidFile none
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
# Tests open many short connections, some at once: no penalties, no early drops of unauthenticated ones.
PerSourcePenalties no
MaxStartups 100
LogLevel VERBOSE
CONF
  if cmp -s "$sd/sshd_config.new" "$sd/sshd_config"; then rm -f "$sd/sshd_config.new"
  else mv "$sd/sshd_config.new" "$sd/sshd_config"; SSHD_CONFIG_CHANGED=1; fi
  cat > "$SSH_DIR/ssh_config" <<CONF
# The lab's ssh client settings (scripts/lab.sh), read instead of ~/.ssh/config and /etc/ssh/ssh_config.
Host *
  IdentityFile $SSH_DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $SSH_DIR/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  PreferredAuthentications publickey
  ConnectTimeout 10
  ServerAliveInterval 15
  ServerAliveCountMax 4
CONF
  cat > "$SSH_DIR/ssh" <<WRAP
#!/bin/sh
# What libvirt's ssh transport runs (the command= of LAB_SSH_URI): ssh with the lab's settings only.
exec ssh -F '$SSH_DIR/ssh_config' "\$@"
WRAP
  chmod 755 "$SSH_DIR/ssh"
  mkdir -p "$ROOT/run/sshd" # sshd's privilege separation directory
  chmod 755 "$ROOT/run/sshd"
  chroot "$ROOT" /usr/sbin/sshd -t -f "$SSHD_DIR/sshd_config" || die "the lab's sshd_config ($sd/sshd_config) does not pass sshd -t"
}

port_listening() { # PORT : a TCP socket listens on it (from /proc/net/tcp*, without connecting)
  local hex
  hex=$(printf ':%04X' "$1")
  awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

start_ssh() {
  local pid i
  if pid=$(own_pid ssh); then
    if [ "${SSHD_CONFIG_CHANGED:-0}" = 1 ]; then
      log "the lab's sshd_config changed: the running sshd (pid $pid, under tini) re-reads it (SIGHUP)"
      kill -HUP "$pid"
      sleep 0.5
    fi
    wait_for "$(ssh_uri)" || die "the ssh lab's sshd (pid $pid) runs but libvirt does not answer through it at $(ssh_uri); see $RUN/ssh.log and $RUN/new.log"
    return 0
  fi
  if port_listening "$SSH_PORT"; then
    die "something the lab did not start listens on 127.0.0.1:$SSH_PORT; choose another port for the lab's sshd: LAB_SSH_PORT=PORT scripts/lab.sh up"
  fi
  mkdir -p "$RUN"
  # Chrooted like the 12.x libvirtd (the same root and mounts).
  start_chrooted ssh /usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd_config"
  for i in $(seq 1 100); do
    port_listening "$SSH_PORT" && break
    [ -d "/proc/$(cat "$RUN/ssh.pid")" ] || die "the lab's sshd exited at once; see $RUN/ssh.log"
    sleep 0.1
  done
  wait_for "$(ssh_uri)" || die "libvirt does not answer through the lab's sshd at $(ssh_uri) within 20 s; see $RUN/ssh.log"
}

stop_ssh() {
  local pid
  if pid=$(own_pid ssh); then stop_pid ssh "$pid"; fi
  rm -f "$RUN/ssh.pid" "$RUN/ssh.id"
}

up_ssh() { # after start_new: the chroot's sshd and storage driver, the lab pool, the sshd
  ensure_pkgs openssh-client # ssh and ssh-keygen on the host
  ensure_chroot_ssh_pkgs
  ensure_new_pool
  configure_ssh
  start_ssh
}

case "${1:-}" in
  up)
    which=${2:-all}
    ensure_client_pkgs
    mkdir -p "$IMAGES"
    start_host
    ensure_firmware_pkgs
    if [ "$which" != host ]; then
      ensure_pkgs "${NEW_PKGS[@]}"
      build_chroot
      configure_chroot
      start_new
      up_ssh
    fi
    log "host lab: $(virsh -c "$(host_uri)" version --daemon 2>/dev/null | grep -m1 -i 'running' || true)"
    log "new lab:  $(virsh -c "$(new_uri)" version --daemon 2>/dev/null | grep -m1 -i 'running' || true)"
    [ "$which" = host ] || log "ssh lab:  $(ssh_uri)"
    print_env
    ;;
  env) print_env ;;
  status)
    for u in "$(host_uri)" "$(new_uri)" "$(ssh_uri)"; do
      if answers "$u"; then echo "up   $u"; else echo "down $u"; fi
    done
    ;;
  down)
    case "${2:-all}" in
      host) stop_host ;;
      new) stop_ssh; stop_new ;;
      *) stop_ssh; stop_new; stop_host ;;
    esac
    ;;
  crash)
    name=${2:?host or new}
    tini_pid=$(own_pid "$name") || die "the $name lab's daemon is not running as started by this script: nothing signalled"
    tini_start=$(proc_start "$tini_pid")
    # tini's only child is libvirtd (unshare, sh and chroot exec into it).
    for child in $(cat "/proc/$tini_pid/task/$tini_pid/children" 2>/dev/null); do kill -KILL "$child"; done
    for _ in $(seq 1 50); do same_process "$tini_pid" "$tini_start" || break; sleep 0.1; done
    rm -f "$RUN/$name.pid" "$RUN/$name.id"
    ;;
  *) sed -n '2,32p' "$0"; exit 2 ;;
esac

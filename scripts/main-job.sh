#!/usr/bin/env bash
# The main job: `pulumi up` of the root stack (Pulumi.yaml -> examples/main: a Domain and a
# 2-member fleet) on the local hypervisor, from a fresh machine. Installs missing dependencies,
# brings up the host lab (`scripts/lab.sh up host`: this host's own libvirt as it is when one is
# set up, else the lab's libvirt 9.0 + QEMU 7.2, which writes nothing under /etc), builds the
# tiny guest every domain boots (`scripts/guest.sh build`: Debian's kernel and a busybox
# initramfs, cached), makes the fleet's template when missing, builds the Pulumi CLI when
# missing, runs `pulumi up`, then prints, for each domain, its libvirt uuid, the UUID its guest
# OS reads (/sys/class/dmi/id/product_uuid, from the guest's serial console, a file) and the
# UUID QEMU reports over QMP.
#
#   scripts/main-job.sh up      (npm run up)
#   scripts/main-job.sh down    (npm run down): destroy the stack, stop what `up` started (lab.sh down host)
#
# State: a local file backend in ${PULUMI_BACKEND_URL:-file://$HOME/.pulumi-libvirt-domain/state};
# secrets passphrase from PULUMI_CONFIG_PASSPHRASE (empty when unset). Stack: ${STACK:-main}.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s\n' "$*"; }
state_dir=$HOME/.pulumi-libvirt-domain/state
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$state_dir}
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-}
export PULUMI_SKIP_UPDATE_CHECK=true
stack=${STACK:-main}
mkdir -p "$state_dir"
pulumi() { bash scripts/pulumi-cli.sh "$@"; }

case "${1:-up}" in
  up)
    step "npm dependencies"
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
    step "build"
    npm run -s build
    step "the local hypervisor (this host's libvirt when set up, else the lab's libvirt 9.0 + QEMU 7.2)"
    lab_env=$(bash scripts/lab.sh up host) # fails the job when lab.sh fails
    eval "$lab_env"
    step "the Pulumi CLI"
    pulumi version
    uri=${LIBVIRT_URI:-$LAB_HOST_URI}
    step "the tiny guest (Debian's kernel + a busybox initramfs; built once, cached)"
    guest_env=$(bash scripts/guest.sh build)
    eval "$guest_env"
    # libvirt's QEMU reads the guest from the image directory; the consoles go there too.
    guest_dir=$LAB_IMAGE_DIR/lvd-guest/$GUEST_ID
    console_dir=$LAB_IMAGE_DIR/lvd-main
    mkdir -p "$guest_dir" "$console_dir"
    [ -f "$guest_dir/vmlinuz" ] || cp "$GUEST_KERNEL" "$guest_dir/vmlinuz"
    [ -f "$guest_dir/initrd.img" ] || cp "$GUEST_INITRD" "$guest_dir/initrd.img"
    echo "guest $GUEST_ID: $guest_dir"
    step "the fleet's template (a shut-off domain that boots the guest, with a small image)"
    # A template from before the guest (no <kernel>) is replaced.
    if virsh -q -c "$uri" domstate lvd-main-template >/dev/null 2>&1 &&
      ! virsh -q -c "$uri" dumpxml --inactive lvd-main-template | grep -q "<kernel>$guest_dir/vmlinuz</kernel>"; then
      virsh -q -c "$uri" undefine lvd-main-template
    fi
    if ! virsh -q -c "$uri" domstate lvd-main-template >/dev/null 2>&1; then
      img=$LAB_IMAGE_DIR/lvd-main-template.qcow2
      [ -f "$img" ] || qemu-img create -q -f qcow2 "$img" 64M
      xml=$(mktemp)
      cat > "$xml" <<XML
<domain type='qemu'>
  <name>lvd-main-template</name>
  <title>Template of the main job's fleet</title>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$guest_dir/vmlinuz</kernel>
    <initrd>$guest_dir/initrd.img</initrd>
    <cmdline>$GUEST_CMDLINE</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$img'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><model type='virtio'/></interface>
    <serial type='file'><source path='$console_dir/lvd-main-template.console'/><target port='0'/></serial>
  </devices>
</domain>
XML
      virsh -q -c "$uri" define "$xml"
      rm -f "$xml"
    fi
    echo "lvd-main-template: $(virsh -q -c "$uri" domstate lvd-main-template)"
    step "pulumi up (stack $stack)"
    pulumi stack select --create "$stack"
    pulumi config set libvirt:uri "$uri"
    pulumi config set guestKernel "$guest_dir/vmlinuz"
    pulumi config set guestInitrd "$guest_dir/initrd.img"
    pulumi config set guestCmdline "$GUEST_CMDLINE"
    pulumi config set consoleDir "$console_dir"
    pulumi up --yes
    step "what the guests see (their OS, from the serial console; QEMU, over QMP)"
    pulumi stack output domains --json | node -e '
      const { execFileSync } = require("node:child_process");
      const fs = require("node:fs");
      const uri = process.argv[1];
      const domains = JSON.parse(fs.readFileSync(0, "utf8"));
      // The guest boots in seconds under TCG; wait (at most 120 s) for its report to end ("ready").
      const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      let failed = 0;
      for (const d of domains) {
        const qmp = JSON.parse(execFileSync("virsh", ["-q", "-c", uri, "qemu-monitor-command", d.name, JSON.stringify({ execute: "query-uuid" })], { encoding: "utf8" })).return.UUID;
        let text = "";
        const end = Date.now() + 120000;
        while (Date.now() < end) {
          try { text = fs.readFileSync(d.console, "utf8"); } catch { text = ""; }
          if (/^LVD-GUEST ready\r?$/m.test(text)) break;
          sleep(250);
        }
        const os = /^LVD-GUEST product_uuid=(\S*)/m.exec(text)?.[1];
        const agree = os === qmp && qmp === d.guestUuid;
        if (!agree) failed++;
        console.log(`${d.name}: uuid ${d.uuid}  guest OS product_uuid ${os ?? "(no report in " + d.console + " after 120 s)"}, QMP ${qmp}  (${d.hwuuidMode}, libvirt ${d.libvirtVersion})${agree ? "" : "  MISMATCH: the hwuuid is " + d.guestUuid}`);
      }
      process.exit(failed ? 1 : 0);' "$uri"
    ;;
  down)
    step "pulumi destroy (stack $stack)"
    npm run -s build
    pulumi stack select "$stack"
    pulumi destroy --yes
    eval "$(bash scripts/lab.sh env)"
    if virsh -q -c "${LIBVIRT_URI:-$LAB_HOST_URI}" domstate lvd-main-template >/dev/null 2>&1; then
      virsh -q -c "${LIBVIRT_URI:-$LAB_HOST_URI}" undefine lvd-main-template
      rm -f "$LAB_IMAGE_DIR/lvd-main-template.qcow2"
    fi
    rm -rf "$LAB_IMAGE_DIR/lvd-main" # the guests' consoles
    step "stop the lab (only a daemon lab.sh started; a host's own libvirt keeps running)"
    bash scripts/lab.sh down host
    ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac

#!/usr/bin/env bash
# The main job: `pulumi up` of the root stack (Pulumi.yaml -> examples/main: a Domain and a
# 2-member fleet) on the local hypervisor, from a fresh machine. Installs missing dependencies,
# brings up the host lab (`scripts/lab.sh up host`: this host's own libvirt as it is when one is
# set up, else the lab's libvirt 9.0 + QEMU 7.2, which writes nothing under /etc), makes the
# fleet's template when missing, builds the Pulumi CLI when missing, runs `pulumi up`, then prints
# each domain's uuid and the UUID its guest reports over QMP.
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
    step "the fleet's template (a shut-off domain with a small image)"
    uri=${LIBVIRT_URI:-$LAB_HOST_URI}
    if ! virsh -q -c "$uri" domstate lvd-main-template >/dev/null 2>&1; then
      img=$LAB_IMAGE_DIR/lvd-main-template.qcow2
      [ -f "$img" ] || qemu-img create -q -f qcow2 "$img" 256M
      xml=$(mktemp)
      cat > "$xml" <<XML
<domain type='qemu'>
  <name>lvd-main-template</name>
  <title>Template of the main job's fleet</title>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$img'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><model type='virtio'/></interface>
    <serial type='pty'/>
  </devices>
</domain>
XML
      virsh -q -c "$uri" define "$xml"
      rm -f "$xml"
    fi
    echo "lvd-main-template: $(virsh -q -c "$uri" domstate lvd-main-template)"
    step "pulumi up (stack $stack)"
    pulumi stack select --create "$stack"
    pulumi config set libvirt:uri "${LIBVIRT_URI:-$LAB_HOST_URI}"
    pulumi up --yes
    step "what the guests see"
    pulumi stack output domains --json | node -e '
      const { execFileSync } = require("node:child_process");
      const uri = process.argv[1];
      const domains = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
      for (const d of domains) {
        const out = execFileSync("virsh", ["-q", "-c", uri, "qemu-monitor-command", d.name, JSON.stringify({ execute: "query-uuid" })], { encoding: "utf8" });
        const guest = JSON.parse(out).return.UUID;
        console.log(`${d.name}: uuid ${d.uuid}  guest UUID over QMP ${guest}  (${d.hwuuidMode}, libvirt ${d.libvirtVersion})`);
      }' "${LIBVIRT_URI:-$LAB_HOST_URI}"
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
    step "stop the lab (only a daemon lab.sh started; a host's own libvirt keeps running)"
    bash scripts/lab.sh down host
    ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac

#!/usr/bin/env bash
# Runs every test from a fresh machine: dependencies, both labs, the Pulumi CLI, libvirt's test
# corpus, then the unit, corpus, lab and end-to-end suites. The labs this script started are
# stopped at the end.
# A suite that needs a real part (a lab, QEMU, the Pulumi CLI) fails when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }
start=$(date +%s)

step "npm dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

step "lint and format (ESLint with type information, Prettier)"
npm run -s lint
npm run -s format:check

step "labs: libvirt 9.0 + QEMU 7.2 on the host, libvirt 12.x + QEMU 11.x in a chroot"
lab_env=$(bash scripts/lab.sh up)
eval "$lab_env"
echo "$lab_env"
trap 'bash scripts/lab.sh down || true' EXIT

step "the tiny guest: Debian's kernel + a busybox initramfs (scripts/guest.sh, cached)"
bash scripts/guest.sh build || echo "the tiny guest could not be built: the tests that boot it will fail"

step "Pulumi CLI"
PULUMI_BIN_DIR=$(bash scripts/pulumi-cli.sh bindir)
export PULUMI_BIN_DIR
"$PULUMI_BIN_DIR/pulumi" version

step "corpus: libvirt's tests/qemuxmlconfdata (pinned release, cached)"
# When it cannot be had the corpus suite fails (with this reason); the other suites still run.
bash scripts/corpus.sh || echo "the corpus could not be fetched: the corpus suite will fail"

step "build"
npm run -s build

status=0 passed=0 failed=0 pending=0
log=$(mktemp)
for suite in unit corpus lab e2e; do
  [ -f "test/.mocharc.$suite.json" ] || continue
  step "tests: $suite"
  npx mocha --config "test/.mocharc.$suite.json" 2>&1 | tee "$log" || status=1
  p=$(grep -oE '^ +[0-9]+ passing' "$log" | grep -oE '[0-9]+' || echo 0)
  f=$(grep -oE '^ +[0-9]+ failing' "$log" | grep -oE '[0-9]+' || echo 0)
  k=$(grep -oE '^ +[0-9]+ pending' "$log" | grep -oE '[0-9]+' || echo 0)
  passed=$((passed + p)) failed=$((failed + f)) pending=$((pending + k))
  [ "$p" -gt 0 ] || { echo "suite $suite ran no test"; status=1; }
done
rm -f "$log"
[ "$failed" -eq 0 ] || status=1

step "done in $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed, $pending skipped"
exit $status

#!/usr/bin/env bash
# Builds (once) and runs the Pulumi CLI this project is pinned to: v3.248.0 with the Node
# language host, from Go modules, cached outside the repository.
#
#   scripts/pulumi-cli.sh build      build into the cache when missing, print the bin dir
#   scripts/pulumi-cli.sh bindir     print the bin dir (builds when missing)
#   scripts/pulumi-cli.sh ARGS...    run `pulumi ARGS...`
#
# A `pulumi` on PATH that reports v3.248.x is used as it is. Otherwise the CLI is built under
# ${PULUMI_CLI_CACHE:-$HOME/.cache/pulumi-libvirt-domain/cli-v3.248.0}. Nothing built is committed.
set -euo pipefail

VERSION=v3.248.0
# The Node language host has no tags; this pseudo-version is the v3.248.0 release commit.
NODEJS_HOST_VERSION=v3.0.0-20260624180030-dc7edd58bc13
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PULUMI_CLI_CACHE:-$HOME/.cache/pulumi-libvirt-domain/cli-$VERSION}
bindir=$cache/bin

log() { printf '[pulumi-cli] %s\n' "$*" >&2; }

path_cli_ok() {
  command -v pulumi >/dev/null 2>&1 && pulumi version 2>/dev/null | grep -q '^v3\.248\.'
}

build() {
  if [ -x "$bindir/pulumi" ]; then return 0; fi
  command -v go >/dev/null || { log "go is required to build the Pulumi CLI (apt-get install golang)"; exit 1; }
  local src=$cache/src
  mkdir -p "$src" "$bindir"
  cd "$src"
  [ -f go.mod ] || go mod init pulumi-cli-build >/dev/null 2>&1
  log "resolving github.com/pulumi/pulumi/pkg/v3@$VERSION (first run downloads several hundred MB)"
  go get -tool "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$VERSION"
  go get "github.com/pulumi/pulumi/sdk/v3@$VERSION"
  # The Node language host is optional: the Go module proxy reachable here does not serve it
  # (403 for every version of .../sdk/nodejs/cmd/pulumi-language-nodejs/v3). Without it,
  # resolve_bindir puts a shim of that name beside the CLI that starts the project's own host
  # (tools/language-host.ts), so `pulumi up` runs Node programs as usual.
  local with_host=0
  if go get "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$NODEJS_HOST_VERSION" 2>"$src/get-nodejs.err"; then
    with_host=1
  else
    log "the Node language host is not available from the Go module proxy; building the CLI alone"
  fi
  printf 'package tools\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > tools.go
  go mod tidy
  local ld="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$VERSION"
  log "building pulumi (a cold build takes many minutes on 2 cores)"
  CGO_ENABLED=0 go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ld" -o "$bindir/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  if [ "$with_host" = 1 ]; then
    log "building pulumi-language-nodejs"
    CGO_ENABLED=0 go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ld" -o "$bindir/pulumi-language-nodejs.tmp" github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
    mv "$bindir/pulumi-language-nodejs.tmp" "$bindir/pulumi-language-nodejs"
  fi
  mv "$bindir/pulumi.tmp" "$bindir/pulumi"
  log "built $("$bindir/pulumi" version) in $bindir"
}

resolve_bindir() {
  if path_cli_ok; then dirname "$(command -v pulumi)"; return; fi
  build
  # The dynamic-provider plugin shim ships in the npm package; it must sit beside the CLI.
  local shim=$here/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs
  if [ -f "$shim" ] && [ ! -e "$bindir/pulumi-resource-pulumi-nodejs" ]; then
    cp "$shim" "$bindir/" && chmod +x "$bindir/pulumi-resource-pulumi-nodejs"
  fi
  # Without the official Node language host, a shim beside the CLI starts the project's own
  # (tools/language-host.ts), found from the program's directory like any dependency.
  if [ ! -x "$bindir/pulumi-language-nodejs" ] || grep -q 'pulumi-libvirt-domain' "$bindir/pulumi-language-nodejs" 2>/dev/null; then
    cat > "$bindir/pulumi-language-nodejs" <<'SHIM'
#!/bin/sh
# Starts pulumi-libvirt-domain's Node language host, resolved from the program's directory.
host=$(node -e 'try { process.stdout.write(require.resolve("pulumi-libvirt-domain/dist/tools/language-host.js", { paths: [process.cwd()] })) } catch (e) {}')
if [ -z "$host" ]; then
  echo "pulumi-language-nodejs: no language host found from $(pwd): run npm install (and npm run build) in the project" >&2
  exit 1
fi
exec node "$host" "$@"
SHIM
    chmod +x "$bindir/pulumi-language-nodejs"
  fi
  echo "$bindir"
}

case "${1:-}" in
  build|bindir) resolve_bindir ;;
  *)
    dir=$(resolve_bindir)
    export PATH="$dir:$PATH"
    export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
    exec "$dir/pulumi" "$@"
    ;;
esac

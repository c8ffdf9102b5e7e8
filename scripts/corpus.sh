#!/usr/bin/env bash
# Fetches (once) libvirt's own QEMU test data, tests/qemuxmlconfdata, from a pinned libvirt
# source release in Debian's archive, and prints the directory. The corpus test
# (test/corpus/corpus.test.ts) runs over it; nothing fetched is committed.
#
#   scripts/corpus.sh            fetch when missing, print the qemuxmlconfdata directory
#   scripts/corpus.sh version    print the pinned libvirt version
#   scripts/corpus.sh firmware   fetch when missing, print the qemufirmwaredata directory
#
# The release is the upstream tarball as Debian ships it (libvirt_VERSION.orig.tar.xz); its
# sha256 is pinned below, taken from the Checksums-Sha256 of the Debian source package, which
# the archive's signed InRelease -> main/source/Sources.xz vouches for. Only
# tests/qemuxmlconfdata and tests/qemufirmwaredata (the QEMU firmware descriptors libvirt's
# tests select firmware from: etc/, usr/, home/ trees) are extracted, into
# ${LIBVIRT_CORPUS_CACHE:-$HOME/.cache/pulumi-libvirt-domain}/libvirt-VERSION/; a cache without
# either directory is extracted again.
# When the tarball cannot be had or does not match, this fails with the reason (never a
# partial directory): the corpus test fails, it never skips.
set -euo pipefail

# The pinned releases, by version: the sha256 of libvirt_VERSION.orig.tar.xz and the Debian
# source package that carries it.
#   12.9.0: the 12.x lab's libvirt (trixie-backports 12.9.0-1~bpo13+1). The archive mirror
#           reachable from this project's machines answers 404 for every file of that source
#           package (its binaries are served), so it cannot be the default yet.
#   11.3.0: trixie's libvirt (11.3.0-3+deb13u3); served. The default.
declare -A PINNED_SHA256=(
  [12.9.0]=dcf579d8a949f4cbf56820529d48f200382a48ea12855ffded7c16a189353cd7
  [11.3.0]=6bcb0c42c4580436fea262ced56f68a6afe20f7390b1bea2116718cc034a0283
)
declare -A PINNED_FROM=(
  [12.9.0]="libvirt 12.9.0-1~bpo13+1 (trixie-backports)"
  [11.3.0]="libvirt 11.3.0-3+deb13u3 (trixie)"
)
VERSION=${LIBVIRT_CORPUS_VERSION:-11.3.0}
MIRROR=${LIBVIRT_CORPUS_MIRROR:-http://deb.debian.org/debian}
CACHE=${LIBVIRT_CORPUS_CACHE:-$HOME/.cache/pulumi-libvirt-domain}

log() { printf '[corpus] %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

sha=${PINNED_SHA256[$VERSION]:-}
[ -n "$sha" ] || fail "libvirt $VERSION is not pinned here (pinned: ${!PINNED_SHA256[*]}); add its orig.tar.xz sha256 from the Debian source package first"

dest=$CACHE/libvirt-$VERSION
data=$dest/tests/qemuxmlconfdata
firmware=$dest/tests/qemufirmwaredata
stamp=$dest/.sha256

if [ "${1:-}" = version ]; then echo "$VERSION"; exit 0; fi
print=$data
[ "${1:-}" = firmware ] && print=$firmware

if [ -d "$data" ] && [ -d "$firmware" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sha" ]; then
  echo "$print"
  exit 0
fi

command -v curl >/dev/null || fail "curl is required to fetch the corpus (apt-get install curl)"
command -v xz >/dev/null || fail "xz is required to unpack the corpus (apt-get install xz-utils)"
command -v sha256sum >/dev/null || fail "sha256sum is required to verify the corpus (coreutils)"

file=libvirt_$VERSION.orig.tar.xz
url=$MIRROR/pool/main/libv/libvirt/$file
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.libvirt-$VERSION.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "fetching $url (${PINNED_FROM[$VERSION]}, about 10 MB)"
code=$(curl -sS -L --retry 2 --connect-timeout 20 --max-time 600 -o "$tmp/$file" -w '%{http_code}' "$url" 2>"$tmp/curl.err") || true
if [ "$code" != 200 ]; then
  fail "could not fetch $url: HTTP ${code:-none} $(tr '\n' ' ' < "$tmp/curl.err")(the corpus is libvirt's tests/qemuxmlconfdata from that tarball; check the mirror, or pick another pinned release with LIBVIRT_CORPUS_VERSION=${!PINNED_SHA256[*]})"
fi
got=$(sha256sum "$tmp/$file" | cut -d' ' -f1)
[ "$got" = "$sha" ] || fail "$file has sha256 $got, pinned $sha: refusing it (a changed or truncated download)"

log "extracting libvirt-$VERSION/tests/qemuxmlconfdata and tests/qemufirmwaredata"
mkdir -p "$tmp/out"
tar -xJf "$tmp/$file" -C "$tmp/out" --strip-components=1 "libvirt-$VERSION/tests/qemuxmlconfdata" ||
  fail "$file has no libvirt-$VERSION/tests/qemuxmlconfdata"
tar -xJf "$tmp/$file" -C "$tmp/out" --strip-components=1 "libvirt-$VERSION/tests/qemufirmwaredata" ||
  fail "$file has no libvirt-$VERSION/tests/qemufirmwaredata"
n=$(find "$tmp/out/tests/qemuxmlconfdata" -maxdepth 1 -name '*.xml' | wc -l)
[ "$n" -gt 0 ] || fail "libvirt-$VERSION/tests/qemuxmlconfdata in $file holds no XML file"
nfw=$(find "$tmp/out/tests/qemufirmwaredata" -name '*.json' | wc -l)
[ "$nfw" -gt 0 ] || fail "libvirt-$VERSION/tests/qemufirmwaredata in $file holds no JSON descriptor"
echo "$sha" > "$tmp/out/.sha256"
# the old cache moves aside first, so that readers see it or the new one, never neither for long
if [ -e "$dest" ]; then mv "$dest" "$tmp/old"; fi
mv "$tmp/out" "$dest"
log "libvirt $VERSION tests/qemuxmlconfdata: $n XML files in $data; tests/qemufirmwaredata: $nfw descriptors in $firmware"
echo "$print"

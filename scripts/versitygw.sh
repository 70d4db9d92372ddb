#!/usr/bin/env bash
# Installs versitygw, the S3-compatible server the s3 package's tests run
# against (Apache-2.0), unless the pinned version is already installed.
# It goes to $GOBIN, or $(go env GOPATH)/bin, where s3test finds it; the
# path of the binary is printed last. CI (.ci/run) calls this script.
#
#   scripts/versitygw.sh            # install when missing
#   VERSITYGW_VERSION=v1.8.0 scripts/versitygw.sh
set -euo pipefail

version="${VERSITYGW_VERSION:-v1.8.0}"
module="github.com/versity/versitygw"
gobin="${GOBIN:-$(go env GOPATH)/bin}"
bin="$gobin/versitygw"

# The version a binary was built from, as go records it.
installed_version() {
	go version -m "$1" 2>/dev/null | awk -v m="$module" '$1 == "mod" && $2 == m { print $3 }'
}

for candidate in "$bin" "$(command -v versitygw 2>/dev/null || true)"; do
	if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$(installed_version "$candidate")" = "$version" ]; then
		echo "versitygw $version: $candidate"
		exit 0
	fi
done

echo "installing versitygw $version into $gobin" >&2
mkdir -p "$gobin"
# Outside any module, so that the repository's go.mod is left alone.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && GOBIN="$gobin" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$module/cmd/versitygw@$version")
if [ "$(installed_version "$bin")" != "$version" ]; then
	echo "versitygw.sh: $bin is not versitygw $version after go install" >&2
	exit 1
fi
echo "versitygw $version: $bin"

#!/usr/bin/env bash
# Replace the vendored Swagger UI with another release of swagger-ui-dist from
# the npm registry, then rebuild and run the browser test:
#   third_party/swagger-ui/update.sh 5.35.0
# Copies only the files reservd serves (and their licences), writes VERSION and
# SHA256SUMS, and points docs/api.html's ?v= cache-busters at the new version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ver=${1:?usage: $0 VERSION (see: npm view swagger-ui-dist version)}
files="swagger-ui.css swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt LICENSE NOTICE"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# npm pack downloads the tarball only: no install scripts run.
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$ver" >/dev/null)
integrity=$(npm view "swagger-ui-dist@$ver" dist.integrity)
tar -xzf "$tmp/swagger-ui-dist-$ver.tgz" -C "$tmp"
for f in $files; do cp "$tmp/package/$f" "$here/$f"; done
printf '%s\n' "$ver" >"$here/VERSION"
(cd "$here" && sha256sum $files >SHA256SUMS)
printf 'swagger-ui-dist@%s %s\n' "$ver" "$integrity" >"$here/SOURCE"
sed -i -E "s/\?v=[0-9A-Za-z.+-]+/?v=$ver/g" "$here/../../docs/api.html"
echo "swagger-ui-dist $ver vendored; now: scripts/test.sh -R browser"

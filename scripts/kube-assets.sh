#!/usr/bin/env bash
# Unpacks the Kubernetes test binaries (kube-apiserver, kube-controller-manager, helm as
# DIR/*.xz, e.g. ../shared/kube/bin) into a cache directory outside the repository and
# prints that directory, for ZEROSCALE_KUBE_ASSETS. The directory is named by the
# sha256 of the compressed files, so a changed binary is unpacked again; older unpacked
# sets are removed.
#   ZEROSCALE_KUBE_ASSETS=$(bash scripts/kube-assets.sh ../shared/kube/bin)
set -euo pipefail
src=${1:?usage: kube-assets.sh DIR-with-xz-files}
cache_root=${ZEROSCALE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zeroscale/kube}
shopt -s nullglob
files=("$src"/*.xz)
[ ${#files[@]} -gt 0 ] || { echo "kube-assets: no *.xz in $src" >&2; exit 1; }
key=$(cd "$src" && sha256sum -- *.xz | sha256sum | cut -c1-16)
dest=$cache_root/$key
if [ ! -f "$dest/.complete" ]; then
  mkdir -p "$cache_root"
  tmp=$(mktemp -d "$cache_root/.unpack.XXXXXX")
  for f in "${files[@]}"; do
    name=$(basename "$f" .xz)
    xz -dc "$f" >"$tmp/$name"
    chmod +x "$tmp/$name"
  done
  touch "$tmp/.complete"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  echo "kube-assets: unpacked ${#files[@]} binaries into $dest" >&2
fi
for old in "$cache_root"/*; do
  [ "$old" = "$dest" ] || rm -rf "$old"
done
echo "$dest"

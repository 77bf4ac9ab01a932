#!/bin/sh
# Mutation testing, one package at a time, niced, one test process (StrykerJS 9, vitest runner):
#   npm run test:mutation                              # losses, balancer, eval
#   npm run test:mutation -- balancer                  # one package
#   npm run test:mutation -- losses --mutate 'src/queue.ts:20-30'   # options after the names go to stryker
# Each package's stryker.config.mjs says what is mutated; reports land in packages/<p>/.cache/stryker/.
# Slow (tens of minutes per package on 2 busy cores): not part of .ci/run. Scores: docs/testing.md.
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
pkgs=""
while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do pkgs="$pkgs $1"; shift; done
[ -n "$pkgs" ] || pkgs="losses balancer eval"
for p in $pkgs; do
  echo "== mutation testing: packages/$p"
  (cd "$root/packages/$p" && nice -n 10 "$root/node_modules/.bin/stryker" run "$@")
done

#!/bin/sh
# Mutation testing, one package at a time, niced, one test process (StrykerJS 9, vitest runner):
#   npm run test:mutation                 # losses, balancer, eval
#   npm run test:mutation -- balancer     # one package
# Each package's stryker.config.mjs says what is mutated; reports land in packages/<p>/.cache/stryker/.
# Slow (tens of minutes on 2 cores): not part of .ci/run. Scores and judged-equivalent survivors: docs/testing.md.
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -gt 0 ] || set -- losses balancer eval
for p in "$@"; do
  echo "== mutation testing: packages/$p"
  (cd "$root/packages/$p" && nice -n 10 "$root/node_modules/.bin/stryker" run)
done

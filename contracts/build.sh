#!/usr/bin/env bash
# Compiles the dev-chain contracts with the pinned solc into abis/build/ (committed).
# Needs node and npm; `npm ci` installs exactly package-lock.json (solc ships its compiler inside
# the npm package, so nothing else is downloaded).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node compile.js

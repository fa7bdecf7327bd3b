#!/usr/bin/env bash
# CI (issue 15, item 5): types generated from openapi/openapi.json with openapi-typescript,
# and a small typed client (client.ts) compiled with `tsc --strict`. The pinned tools
# (package.json, package-lock.json) are installed into a temporary folder; skipped, saying
# so, where npm is absent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
spec="$(realpath "${1:-$here/../../openapi/openapi.json}")"
if ! command -v npm >/dev/null 2>&1 || ! command -v npx >/dev/null 2>&1; then
    echo "== TypeScript check SKIPPED: npm/npx is not installed (needs Node.js)"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$here/client.ts" "$here/tsconfig.json" "$work/"
cd "$work"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
npx --no-install openapi-typescript "$spec" --output schema.d.ts
npx --no-install tsc --strict -p tsconfig.json
echo "== TypeScript check: openapi-typescript types and tsc --strict pass"

#!/bin/sh
# Rebuilds static/vendor/primer-<version>.css from the pinned packages in package-lock.json.
# Needs Node >= 16 and npm; only for rebuilding, never at run time or in CI.
set -eu
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund
version=$(node -p 'require("@primer/css/package.json").version')
primitives=$(node -p 'require("@primer/primitives/package.json").version')
pvc=$(node -p 'require("@primer/view-components/package.json").version')
out="../../static/vendor/primer-$version.css"
{
  printf '/*! Orgkeeper subset of Primer (https://primer.style), light theme: @primer/css %s, @primer/primitives %s, @primer/view-components %s. Each MIT licensed, Copyright (c) GitHub Inc. Built from static-src/primer/orgkeeper-primer.scss. */\n' "$version" "$primitives" "$pvc"
  npx sass --load-path=node_modules --style=compressed --no-source-map --quiet-deps \
    --silence-deprecation=import,global-builtin,color-functions orgkeeper-primer.scss
} > "$out"
wc -c "$out"
sha256sum "$out"

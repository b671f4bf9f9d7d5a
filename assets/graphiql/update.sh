#!/usr/bin/env bash
# Re-vendors GraphiQL's browser assets from their npm packages into this
# folder (the server embeds them; nothing is fetched at run time).
# Change the versions here, run it, commit the result.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent \
  graphiql@3.8.3 @graphiql/plugin-explorer@3.2.6 react@18.3.1 react-dom@18.3.1 graphql@16.9.0)
m="$work/node_modules"
cp "$m/react/umd/react.production.min.js" react.production.min.js
cp "$m/react-dom/umd/react-dom.production.min.js" react-dom.production.min.js
cp "$m/graphiql/graphiql.min.js" graphiql.min.js
cp "$m/graphiql/graphiql.min.css" graphiql.min.css
cp "$m/@graphiql/plugin-explorer/dist/index.umd.js" plugin-explorer.umd.js
cp "$m/@graphiql/plugin-explorer/dist/style.css" plugin-explorer.css
mkdir -p licenses
cp "$m/react/LICENSE" licenses/react.LICENSE
cp "$m/react-dom/LICENSE" licenses/react-dom.LICENSE
cp "$m/graphiql/LICENSE" licenses/graphiql.LICENSE
cp "$m/graphql/LICENSE" licenses/graphql.LICENSE

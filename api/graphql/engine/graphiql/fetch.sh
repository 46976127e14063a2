#!/usr/bin/env bash
# Fetches the GraphiQL page's assets from the npm registry and stores them gzipped beside this
# script, where handler.go embeds them (served gzipped as they are, so no CDN is needed and the
# binary stays small). Run by `make graphiql`; bump the versions here to update them.
set -euo pipefail

GRAPHIQL=3.8.3
REACT=18.3.1

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
	mkdir "$pkg"
	tar xzf "$pkg.tgz" -C "$pkg"
done

# -n: no name or time in the gzip header, so the same inputs give the same bytes.
put() { gzip -9 -n -c "$1" >"$here/$2.gz"; }
put "graphiql-$GRAPHIQL/package/graphiql.min.js" graphiql.min.js
put "graphiql-$GRAPHIQL/package/graphiql.min.css" graphiql.min.css
put "react-$REACT/package/umd/react.production.min.js" react.production.min.js
put "react-dom-$REACT/package/umd/react-dom.production.min.js" react-dom.production.min.js

{
	echo "graphiql $GRAPHIQL (npm), MIT:"
	cat "graphiql-$GRAPHIQL/package/LICENSE"
	echo
	echo "react $REACT and react-dom $REACT (npm), MIT:"
	cat "react-$REACT/package/LICENSE"
} >"$here/LICENSES.txt"

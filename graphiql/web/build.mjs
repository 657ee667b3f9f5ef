// Bundles entry.jsx (GraphiQL, React, graphql, graphql-ws) into
// ../assets/app.js and ../assets/app.css, minified, for go:embed. Run by
// `make graphiql-assets` after `npm ci`; the output is committed so that
// building fraised needs no npm.
import { build } from 'esbuild';

await build({
  entryPoints: { app: 'entry.jsx' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: '../assets',
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.woff2': 'dataurl', '.woff': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl' },
  legalComments: 'linked',
  logLevel: 'info',
});

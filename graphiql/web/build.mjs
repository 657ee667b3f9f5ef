// Bundles entry.jsx (GraphiQL, React, graphql, graphql-ws) into
// ../assets/app.js.gz and ../assets/app.css.gz, minified and gzipped, for
// go:embed (the server sends them gzipped, or unzips them once for a
// client that does not accept gzip). Run by `make graphiql-assets` after
// `npm ci`; the output is committed so that building fraised needs no npm.
// The output is deterministic: the same packages give the same bytes.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';

const out = await build({
  entryPoints: { app: 'entry.jsx' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: '../assets',
  write: false,
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.woff2': 'dataurl', '.woff': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl' },
  legalComments: 'linked',
  logLevel: 'info',
});
mkdirSync('../assets', { recursive: true });
for (const f of out.outputFiles) {
  const gz = gzipSync(f.contents, { level: 9 });
  writeFileSync(f.path + '.gz', gz);
  console.log(`${f.path.replace(/.*\//, '')}: ${f.contents.length} bytes, ${gz.length} gzipped`);
}

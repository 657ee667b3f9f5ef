// Drives fraised's embedded GraphiQL page in Debian's chromium (headless,
// playwright-core; no browser download): puts the token in the header
// editor, loads the schema (introspection over the socket), runs a
// subscription, prints "subscribed", waits until the
// result pane shows the event the Go test publishes, takes a screenshot,
// and prints one JSON line with every URL the page requested.
//
//   node graphiql.mjs --page http://127.0.0.1:8080/graphiql --token JWT \
//     --topic t --want text --shot out.png [--chromium /usr/bin/chromium]
import { chromium } from 'playwright-core';

const opt = { chromium: '/usr/bin/chromium' };
for (let i = 2; i < process.argv.length; i += 2) opt[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const browser = await chromium.launch({
  executablePath: opt.chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
});
const requests = [];
const problems = [];
let page;
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('request', (r) => requests.push(r.url()));
  page.on('websocket', (ws) => requests.push(ws.url()));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
  page.setDefaultTimeout(30000);

  await page.goto(opt.page, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-query-editor .CodeMirror');
  // The schema arrived over the socket (introspection): the doc explorer
  // button is enabled once GraphiQL has a schema.
  await page.waitForFunction(() => !document.querySelector('.graphiql-spinner'));

  const query = `subscription { events(topic: ${JSON.stringify(opt.topic)}) { seq body } }`;
  await page.evaluate((q) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q), query);

  await page.getByRole('button', { name: 'Headers' }).click();
  await page.waitForSelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
  await page.evaluate((h) => {
    const cm = document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror').CodeMirror;
    cm.setValue(h);
  }, JSON.stringify({ Authorization: 'Bearer ' + opt.token }));

  await page.click('.graphiql-execute-button');
  console.log('subscribed');
  await page.waitForFunction((want) => {
    const el = document.querySelector('.graphiql-response');
    return el && el.innerText.includes(want);
  }, opt.want, { timeout: 30000 });
  const text = await page.evaluate(() => document.querySelector('.graphiql-response').innerText);
  // With the token in place (the header editor applies edits to the
  // schema fetch after a debounce, long past by now) the schema loads over the socket
  // (introspection), and the documentation explorer shows its root types.
  await page.getByRole('button', { name: 'Re-fetch GraphQL schema' }).click();
  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
  await page.waitForFunction(() => {
    const el = document.querySelector('.graphiql-doc-explorer');
    return el && el.innerText.includes('subscription') && el.innerText.includes('Subscription');
  });
  const docs = await page.evaluate(() => document.querySelector('.graphiql-doc-explorer').innerText);

  await page.screenshot({ path: opt.shot });
  console.log(JSON.stringify({ requests, problems, text, docs }));
} catch (e) {
  let dom = '';
  if (page) {
    dom = await page.evaluate(() => document.body.innerText).catch(() => '');
    await page.screenshot({ path: opt.shot }).catch(() => {});
  }
  console.log(JSON.stringify({ requests, problems, error: String(e), dom }));
  process.exitCode = 1;
} finally {
  await browser.close();
}

'use strict';
/**
 * The real launcher running a fake binary (a node script, pointed to by
 * CDN_DEPLOY_BINARY_PATH): exit codes, death by signal, signal forwarding and environment.
 */

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const LAUNCHER = path.resolve(__dirname, '../cdn-deploy/bin/cdn-deploy.js');
const unix = process.platform !== 'win32';

/** The fake binary's behaviour is chosen by its first argument. */
const FAKE = `#!${process.execPath}
'use strict';
const [mode, arg] = process.argv.slice(2);
if (mode === 'exit') process.exit(Number(arg));
if (mode === 'die') process.kill(process.pid, arg);
if (mode === 'env') { process.stdout.write(process.env.CDN_DEPLOY_LAUNCHER || '<unset>'); process.exit(0); }
if (mode === 'args') { process.stdout.write(JSON.stringify(process.argv.slice(3))); process.exit(0); }
if (mode === 'trap') {
  process.on('SIGINT', () => process.exit(42));
  process.stdout.write('ready\\n');
  setInterval(() => {}, 1000);
}
`;

let dir;
let fake;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdn-deploy-launcher-'));
  fake = path.join(dir, 'fake-binary');
  fs.writeFileSync(fake, FAKE, { mode: 0o755 });
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** @param {string[]} args */
function launch(args, binary = fake) {
  return spawnSync(process.execPath, [LAUNCHER, ...args], {
    env: { ...process.env, CDN_DEPLOY_BINARY_PATH: binary },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

test('the exit code of the binary comes back unchanged', { skip: !unix && 'needs a shebang script' }, () => {
  for (const code of [0, 7, 2, 130]) {
    const result = launch(['exit', String(code)]);
    assert.equal(result.status, code, result.stderr);
    assert.equal(result.signal, null);
  }
});

test('a binary killed by SIGTERM makes the launcher die by SIGTERM', { skip: !unix && 'no signals' }, () => {
  const result = launch(['die', 'SIGTERM']);
  assert.equal(result.signal, 'SIGTERM', `status ${result.status}, stderr ${result.stderr}`);
  assert.equal(result.status, null);
});

test('SIGINT sent to the launcher alone reaches the binary', { skip: !unix && 'no signals' }, async () => {
  const child = spawn(process.execPath, [LAUNCHER, 'trap'], {
    env: { ...process.env, CDN_DEPLOY_BINARY_PATH: fake },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // Only once the fake has its handler does SIGINT mean "stop nicely" rather than "die".
  await new Promise((resolve) => child.stdout.once('data', resolve));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const { code, signal } = await exited;
  clearTimeout(timer);
  assert.deepEqual({ code, signal }, { code: 42, signal: null }, stderr);
});

test('the binary sees CDN_DEPLOY_LAUNCHER=npx and the arguments as given', { skip: !unix && 'needs a shebang script' }, () => {
  const env = launch(['env']);
  assert.equal(env.stdout, 'npx', env.stderr);
  const args = ['--bucket', 'my site', '$HOME', '*', '"quoted"', ''];
  const echoed = launch(['args', ...args]);
  assert.deepEqual(JSON.parse(echoed.stdout), args, echoed.stderr);
});

test('a launcher failure is one cdn-deploy: message and exit code 1', () => {
  const result = launch(['--version'], path.join(dir, 'missing'));
  assert.equal(result.status, 1);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /^cdn-deploy: CDN_DEPLOY_BINARY_PATH is set to .*missing, but there is no file there\.\nNext step: .*\n$/);
});

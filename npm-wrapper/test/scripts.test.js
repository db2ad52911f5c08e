'use strict';
/**
 * The release scripts: the version comes from Cargo.toml, the main package agrees with it
 * and with platforms.json, and a generated platform package is complete.
 */

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');
const { crateVersion, platforms } = require('../scripts/common.js');

const SCRIPTS = path.resolve(__dirname, '../scripts');

test('the version is read from the [package] table only', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdn-deploy-toml-'));
  const toml = path.join(dir, 'Cargo.toml');
  fs.writeFileSync(
    toml,
    '[workspace]\nversion = "9.9.9"\n\n[package]\nname = "x"\nversion = "1.2.3-rc.1"\n\n[dependencies]\nversion = "0.0.1"\n',
  );
  assert.equal(crateVersion(toml), '1.2.3-rc.1');
  fs.writeFileSync(toml, '[package]\r\nname = "x"\r\n\r\n[lib]\r\n[dependencies]\r\nfoo = { version = "1" }\r\n');
  assert.throws(() => crateVersion(toml), /no \[package\] version/);
  fs.rmSync(dir, { recursive: true });
});

test('the main package is in sync with Cargo.toml and platforms.json', () => {
  const result = spawnSync(process.execPath, [path.join(SCRIPTS, 'sync-version.js'), '--check'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../cdn-deploy/package.json'), 'utf8'));
  assert.equal(manifest.scripts, undefined, 'no install scripts, no scripts at all');
  assert.equal(manifest.dependencies, undefined);
  for (const { package: name } of Object.values(platforms())) {
    assert.equal(manifest.optionalDependencies[name], crateVersion(), `${name} is pinned exactly`);
  }
});

test('make-platform-package writes a complete package with an executable binary', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdn-deploy-pkg-'));
  const binary = path.join(dir, 'built');
  fs.writeFileSync(binary, 'binary', { mode: 0o644 });
  const out = path.join(dir, 'win32-arm64');
  const result = spawnSync(process.execPath, [path.join(SCRIPTS, 'make-platform-package.js'), 'win32-arm64', binary, out], {
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'package.json'), 'utf8'));
  assert.equal(manifest.name, '@cdn-deploy/win32-arm64');
  assert.equal(manifest.version, crateVersion());
  assert.deepEqual([manifest.os, manifest.cpu, manifest.files], [['win32'], ['arm64'], ['bin']]);
  assert.equal(manifest.preferUnplugged, true);
  assert.equal(manifest.scripts, undefined);
  const exe = path.join(out, 'bin', 'cargo-cdn-deploy.exe');
  assert.equal(fs.readFileSync(exe, 'utf8'), 'binary');
  if (process.platform !== 'win32') assert.equal(fs.statSync(exe).mode & 0o777, 0o755);
  assert.ok(fs.existsSync(path.join(out, 'README.md')) && fs.existsSync(path.join(out, 'LICENSE')));

  const unknown = spawnSync(process.execPath, [path.join(SCRIPTS, 'make-platform-package.js'), 'plan9-x64', binary, out], {
    encoding: 'utf8',
  });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown platform plan9-x64; known: linux-x64/);
  fs.rmSync(dir, { recursive: true });
});

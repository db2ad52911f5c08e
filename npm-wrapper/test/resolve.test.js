'use strict';
/**
 * The launcher's resolution on every platform and every broken install, played through an
 * injected host: no real node_modules, no real binary.
 */

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { LaunchError, PLATFORMS, resolveBinary, spawnFailureMessage } = require('../cdn-deploy/lib/resolve.js');

const NODE_MODULES = path.resolve('/proj/node_modules');

/**
 * A machine with the given packages installed under /proj/node_modules.
 *
 * @param {object} options
 * @param {string} [options.platform]
 * @param {string} [options.arch]
 * @param {Record<string, string>} [options.env]
 * @param {Record<string, string>} [options.installed]  Package name -> its folder.
 * @param {string[]} [options.files]  Files that exist.
 * @param {string[]} [options.executable]  Files that may be executed (default: all files).
 */
function host({ platform = 'linux', arch = 'x64', env = {}, installed = {}, files = [], executable = files }) {
  return {
    platform,
    arch,
    env,
    resolve(request) {
      const name = request.replace(/\/package\.json$/, '');
      if (!installed[name]) {
        const error = new Error(`Cannot find module '${request}'`);
        error.code = 'MODULE_NOT_FOUND';
        throw error;
      }
      return path.join(installed[name], 'package.json');
    },
    isFile: (file) => files.includes(file),
    isExecutable: (file) => executable.includes(file),
  };
}

/** @param {string} name */
function folder(name) {
  return path.join(NODE_MODULES, name);
}

/**
 * Resolution must fail with one `cdn-deploy:` message that names the next step.
 *
 * @param {object} machine
 * @param {RegExp[]} expected
 * @returns {string} The message.
 */
function failsWith(machine, ...expected) {
  let message;
  assert.throws(
    () => resolveBinary(machine),
    (error) => {
      assert.ok(error instanceof LaunchError, `a LaunchError, not ${error}`);
      message = error.message;
      return true;
    },
  );
  assert.match(message, /^cdn-deploy: /);
  assert.match(message, /\nNext step: /);
  for (const pattern of expected) assert.match(message, pattern);
  return message;
}

test('finds the binary in the package of the platform', () => {
  const binary = path.join(folder('@cdn-deploy/linux-x64'), 'bin', 'cargo-cdn-deploy');
  const machine = host({ installed: { '@cdn-deploy/linux-x64': folder('@cdn-deploy/linux-x64') }, files: [binary] });
  assert.equal(resolveBinary(machine), binary);
});

test('every platform has a package with the right binary name', () => {
  for (const [key, platform] of Object.entries(PLATFORMS)) {
    const dir = folder(platform.package);
    const exe = platform.os === 'win32' ? 'cargo-cdn-deploy.exe' : 'cargo-cdn-deploy';
    const binary = path.join(dir, 'bin', exe);
    const machine = host({ platform: platform.os, arch: platform.cpu, installed: { [platform.package]: dir }, files: [binary] });
    assert.equal(resolveBinary(machine), binary, key);
    assert.equal(platform.package, `@cdn-deploy/${key}`);
  }
});

test('CDN_DEPLOY_BINARY_PATH wins over everything, even an unsupported platform', () => {
  const binary = path.resolve('/opt/cdn/cargo-cdn-deploy');
  const machine = host({ platform: 'freebsd', env: { CDN_DEPLOY_BINARY_PATH: binary }, files: [binary] });
  assert.equal(resolveBinary(machine), binary);
});

test('a relative CDN_DEPLOY_BINARY_PATH is made absolute, so spawn never searches PATH', () => {
  const binary = path.resolve('cargo-cdn-deploy');
  const machine = host({ env: { CDN_DEPLOY_BINARY_PATH: 'cargo-cdn-deploy' }, files: [binary] });
  assert.equal(resolveBinary(machine), binary);
});

test('an empty CDN_DEPLOY_BINARY_PATH counts as unset', () => {
  failsWith(host({ env: { CDN_DEPLOY_BINARY_PATH: '' } }), /is not installed/);
});

test('CDN_DEPLOY_BINARY_PATH pointing nowhere', () => {
  failsWith(
    host({ env: { CDN_DEPLOY_BINARY_PATH: '/nowhere/cargo-cdn-deploy' } }),
    /CDN_DEPLOY_BINARY_PATH is set to \/nowhere\/cargo-cdn-deploy, but there is no file there/,
    /unset it/,
  );
});

test('CDN_DEPLOY_BINARY_PATH pointing at a file that is not executable', () => {
  const binary = path.resolve('/opt/cdn/cargo-cdn-deploy');
  failsWith(
    host({ env: { CDN_DEPLOY_BINARY_PATH: binary }, files: [binary], executable: [] }),
    /not executable \(EACCES\)/,
    new RegExp(`chmod \\+x ${binary.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`),
  );
});

test('an unsupported platform lists the supported ones and suggests cargo install', () => {
  const message = failsWith(host({ platform: 'freebsd', arch: 'x64' }), /freebsd-x64/, /cargo install cargo-cdn-deploy/);
  for (const key of Object.keys(PLATFORMS)) assert.ok(message.includes(key), `lists ${key}`);
  failsWith(host({ platform: 'linux', arch: 'ia32' }), /no prebuilt binary for this platform \(linux-ia32\)/);
});

test('optional dependencies omitted: the package of a supported platform is missing', () => {
  failsWith(
    host({}),
    /@cdn-deploy\/linux-x64, the package holding the binary for linux-x64, is not installed/,
    /--omit=optional/,
    /npm install --include=optional/,
    /delete node_modules and package-lock.json/,
  );
});

test('installed for another platform: only a sibling package is there', () => {
  failsWith(
    host({ installed: { '@cdn-deploy/darwin-arm64': folder('@cdn-deploy/darwin-arm64') } }),
    /binary for darwin-arm64 \(@cdn-deploy\/darwin-arm64\), but this machine is linux-x64/,
    /installed on another machine and copied here/,
    /run `npm install` \(or `npm ci`\) on this machine/,
  );
});

test('Yarn PnP: a package inside a zip archive cannot be run', () => {
  const zip = path.resolve('/proj/.yarn/cache/@cdn-deploy-linux-x64-npm-0.1.0-3f2a9c.zip/node_modules/@cdn-deploy/linux-x64');
  const virtual = path.resolve('/proj/.yarn/__virtual__/@cdn-deploy-linux-x64-virtual-0a1b2c/0/cache/x/node_modules/@cdn-deploy/linux-x64');
  for (const dir of [zip, virtual]) {
    const binary = path.join(dir, 'bin', 'cargo-cdn-deploy');
    failsWith(
      host({ installed: { '@cdn-deploy/linux-x64': dir }, files: [binary] }),
      /inside a zip archive/,
      /"dependenciesMeta": \{"@cdn-deploy\/linux-x64": \{"unplugged": true\}\}/,
      /nodeLinker: node-modules/,
    );
  }
});

test('the package is there but its binary is missing', () => {
  failsWith(
    host({ installed: { '@cdn-deploy/linux-x64': folder('@cdn-deploy/linux-x64') } }),
    /its binary .*cargo-cdn-deploy is missing/,
    /delete node_modules and run `npm install` again/,
  );
});

test('the binary lost its executable bit', () => {
  const binary = path.join(folder('@cdn-deploy/linux-x64'), 'bin', 'cargo-cdn-deploy');
  failsWith(
    host({ installed: { '@cdn-deploy/linux-x64': folder('@cdn-deploy/linux-x64') }, files: [binary], executable: [] }),
    /is not executable \(EACCES\)/,
    /chmod \+x .*cargo-cdn-deploy`/,
  );
});

test('spawn errors at run time each get their own message', () => {
  const binary = '/b/cargo-cdn-deploy';
  const error = (code) => Object.assign(new Error(`spawn ${binary} ${code}`), { code });
  const cases = [
    ['ENOENT', [/cannot start \/b\/cargo-cdn-deploy \(ENOENT\)/, /program loader/, /static musl build/]],
    ['EACCES', [/\(EACCES\): permission denied/, /chmod \+x \/b\/cargo-cdn-deploy/, /noexec/]],
    ['ENOEXEC', [/\(ENOEXEC\)/, /another CPU/]],
  ];
  for (const [code, patterns] of cases) {
    const message = spawnFailureMessage(error(code), binary);
    assert.match(message, /^cdn-deploy: /);
    assert.match(message, /\nNext step: /);
    for (const pattern of patterns) assert.match(message, pattern);
  }
});

'use strict';
/**
 * Finds the cargo-cdn-deploy binary for the launcher and words every way that can fail.
 *
 * The logic is pure: all it learns about the machine comes through a `host` object, so the
 * tests can play any platform and any broken install without touching the real node_modules.
 * Every failure is a LaunchError whose message starts with `cdn-deploy:` and ends with the
 * next step, because the user usually sees it in the middle of a build log.
 */

const fs = require('node:fs');
const path = require('node:path');

/** Generated from npm-wrapper/platforms.json by scripts/sync-version.js; never edit by hand. */
const PLATFORMS = require('./platforms.json');

const OVERRIDE = 'CDN_DEPLOY_BINARY_PATH';
const FROM_SOURCE = 'cargo install cargo-cdn-deploy';

/**
 * @typedef {object} Platform
 * @property {string} target   Rust target triple the binary is built for.
 * @property {string} os       `process.platform` value, also the npm `os` field.
 * @property {string} cpu      `process.arch` value, also the npm `cpu` field.
 * @property {string} package  The npm package holding the binary.
 * @property {string} exe      File name of the binary inside the package's `bin/`.
 */

/**
 * @typedef {object} Host
 * @property {string} platform  `process.platform`.
 * @property {string} arch      `process.arch`.
 * @property {Record<string, string | undefined>} env
 * @property {(request: string) => string} resolve  Like `require.resolve`: throws when absent.
 * @property {(file: string) => boolean} isFile  True for an existing file (symlinks followed).
 * @property {(file: string) => boolean} isExecutable  True when this user may execute it.
 */

/** A launcher failure: the message is complete and meant for the user as is. */
class LaunchError extends Error {}

/**
 * @param {string[]} lines  The problem first, the next step last.
 * @returns {LaunchError}
 */
function failure(...lines) {
  return new LaunchError(`cdn-deploy: ${lines.join('\n')}`);
}

/**
 * The binary to run, or a LaunchError saying why there is none.
 *
 * @param {Host} host
 * @param {Record<string, Platform>} [platforms]
 * @returns {string} An absolute path, so spawn never searches PATH for it.
 */
function resolveBinary(host, platforms = PLATFORMS) {
  const override = host.env[OVERRIDE];
  // An empty value counts as unset, as `CDN_DEPLOY_BINARY_PATH= npx cdn-deploy` intends.
  if (override) {
    const binary = path.resolve(override);
    if (!host.isFile(binary)) {
      throw failure(
        `${OVERRIDE} is set to ${override}, but there is no file there.`,
        `Next step: point ${OVERRIDE} at a cargo-cdn-deploy binary ` +
          '(for example ~/.cargo/bin/cargo-cdn-deploy), or unset it to use the installed package.',
      );
    }
    return checkExecutable(host, binary);
  }

  const key = `${host.platform}-${host.arch}`;
  const wanted = platforms[key];
  if (!wanted) {
    throw failure(
      `there is no prebuilt binary for this platform (${key}); ` +
        `prebuilt: ${Object.keys(platforms).join(', ')}.`,
      `Next step: build it with \`${FROM_SOURCE}\` (needs Rust) and either run ` +
        `\`cargo cdn-deploy\`, or set ${OVERRIDE}=$HOME/.cargo/bin/cargo-cdn-deploy so \`cdn-deploy\` runs it.`,
    );
  }

  const manifest = tryResolve(host, `${wanted.package}/package.json`);
  if (!manifest) {
    const other = Object.entries(platforms).find(
      ([name, p]) => name !== key && tryResolve(host, `${p.package}/package.json`),
    );
    if (other) {
      throw failure(
        `node_modules holds the binary for ${other[0]} (${other[1].package}), ` +
          `but this machine is ${key}: node_modules was installed on another machine and copied here ` +
          '(into a Docker image, a VM or a shared folder).',
        'Next step: run `npm install` (or `npm ci`) on this machine; ' +
          'for Docker, add node_modules to .dockerignore and install inside the image.',
      );
    }
    throw failure(
      `${wanted.package}, the package holding the binary for ${key}, is not installed. ` +
        'npm leaves it out when optional dependencies are omitted (--omit=optional, --no-optional, ' +
        'omit=optional in .npmrc) or when package-lock.json was written on another OS.',
      'Next step: run `npm install --include=optional`; if it is still missing, delete ' +
        'node_modules and package-lock.json and run `npm install` again.',
    );
  }

  // Yarn PnP serves packages from zip archives through a patched fs that only node sees; the
  // OS cannot exec a file inside a zip, so the package has to be unpacked on disk.
  const slashed = manifest.split(path.sep).join('/');
  if (slashed.includes('.zip/') || slashed.includes('/__virtual__/')) {
    throw failure(
      `${wanted.package} is inside a zip archive (${path.dirname(manifest)}), and a binary cannot ` +
        'run from a zip archive.',
      'Next step: have Yarn unpack it: add "dependenciesMeta": ' +
        `{"${wanted.package}": {"unplugged": true}} to package.json, or set ` +
        '`nodeLinker: node-modules` in .yarnrc.yml, then run `yarn install`.',
    );
  }

  const binary = path.join(path.dirname(manifest), 'bin', wanted.exe);
  if (!host.isFile(binary)) {
    throw failure(
      `${wanted.package} is installed but its binary ${binary} is missing ` +
        '(an interrupted install, or a cleanup tool removed it).',
      'Next step: delete node_modules and run `npm install` again.',
    );
  }
  return checkExecutable(host, binary);
}

/**
 * @param {Host} host
 * @param {string} binary
 * @returns {string} `binary`, when it may be executed.
 */
function checkExecutable(host, binary) {
  if (!host.isExecutable(binary)) {
    throw failure(
      `${binary} is not executable (EACCES).`,
      `Next step: run \`chmod +x ${binary}\`, or delete node_modules and run \`npm install\` again ` +
        '(copying or unpacking node_modules with some tools drops the executable bit).',
    );
  }
  return binary;
}

/**
 * @param {Host} host
 * @param {string} request
 * @returns {string | undefined} The resolved path, or undefined whatever the reason it failed:
 *   MODULE_NOT_FOUND, or Yarn PnP refusing an undeclared package, both mean "not usable here".
 */
function tryResolve(host, request) {
  try {
    return host.resolve(request);
  } catch {
    return undefined;
  }
}

/**
 * The message for a binary that passed every check but could not be started.
 *
 * @param {NodeJS.ErrnoException} error  From the child process's 'error' event.
 * @param {string} binary
 * @returns {string}
 */
function spawnFailureMessage(error, binary) {
  const code = error.code || 'unknown error';
  if (code === 'ENOENT') {
    // The file was there a moment ago, so ENOENT usually means the ELF loader it names is
    // missing: a glibc build on Alpine, for example.
    return failure(
      `cannot start ${binary} (ENOENT): it vanished, or it needs a program loader this system ` +
        'lacks (a glibc build on Alpine, say).',
      `Next step: run \`npm install\` again; if ${OVERRIDE} is set, point it at a binary built for ` +
        'this system (for Linux, a static musl build).',
    ).message;
  }
  if (code === 'EACCES') {
    return failure(
      `cannot start ${binary} (EACCES): permission denied.`,
      `Next step: run \`chmod +x ${binary}\`; if it is executable already, the file system is ` +
        'mounted noexec, so install node_modules on one that allows running programs.',
    ).message;
  }
  return failure(
    `cannot start ${binary} (${code}): this system cannot run it as a program.`,
    'Next step: delete node_modules and run `npm install` on this machine; the binary may be ' +
      'built for another CPU.',
  ).message;
}

/**
 * The real machine, for the launcher.
 *
 * @returns {Host}
 */
function currentHost() {
  return {
    platform: process.platform,
    arch: process.arch,
    env: process.env,
    resolve: (request) => require.resolve(request),
    isFile: (file) => {
      try {
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
    isExecutable: (file) => {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
  };
}

module.exports = {
  LaunchError,
  PLATFORMS,
  currentHost,
  resolveBinary,
  spawnFailureMessage,
};

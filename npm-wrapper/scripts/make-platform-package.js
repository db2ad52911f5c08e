#!/usr/bin/env node
'use strict';
/**
 * Usage: make-platform-package.js <platform-key> <binary-path> <out-dir>
 *
 * Writes the npm package of one platform (for example @cdn-deploy/linux-x64) into <out-dir>:
 * package.json, README.md, LICENSE and bin/<exe>, ready for `npm pack` or `npm publish`.
 * The package has `os`/`cpu` so npm installs only the one matching the machine, and no
 * scripts: the binary is simply a file of the tarball.
 */

const fs = require('node:fs');
const path = require('node:path');
const { REPO, crateVersion, platforms, writeJson } = require('./common.js');

function main(argv) {
  if (argv.length !== 3) {
    process.stderr.write('usage: make-platform-package.js <platform-key> <binary-path> <out-dir>\n');
    return 2;
  }
  const [key, binary, outDir] = argv;
  const table = platforms();
  const platform = table[key];
  if (!platform) {
    process.stderr.write(`unknown platform ${key}; known: ${Object.keys(table).join(', ')}\n`);
    return 2;
  }
  if (!fs.statSync(binary, { throwIfNoEntry: false })?.isFile()) {
    process.stderr.write(`no binary at ${binary}\n`);
    return 2;
  }
  const version = crateVersion();

  // A stale bin/ from an earlier run could ship a second, wrong binary.
  fs.rmSync(path.join(outDir, 'bin'), { recursive: true, force: true });
  fs.mkdirSync(path.join(outDir, 'bin'), { recursive: true });
  const exe = path.join(outDir, 'bin', platform.exe);
  fs.copyFileSync(binary, exe);
  // npm pack keeps the executable bit, and the installed file gets it from the tarball: the
  // binary is not a `bin` entry, which npm would chmod itself.
  fs.chmodSync(exe, 0o755);

  writeJson(path.join(outDir, 'package.json'), {
    name: platform.package,
    version,
    description: `The ${key} binary of cdn-deploy (${platform.target}). Install cdn-deploy, not this.`,
    license: 'MIT',
    os: [platform.os],
    cpu: [platform.cpu],
    files: ['bin'],
    // Yarn PnP would otherwise keep the package in a zip archive, where it cannot be run.
    preferUnplugged: true,
    // Scoped packages are private by default; these must be installable by anyone.
    publishConfig: { access: 'public' },
  });
  fs.copyFileSync(path.join(REPO, 'LICENSE'), path.join(outDir, 'LICENSE'));
  fs.writeFileSync(
    path.join(outDir, 'README.md'),
    `# ${platform.package}\n\n` +
      `The \`cargo-cdn-deploy\` binary for ${key} (\`${platform.target}\`), version ${version}.\n\n` +
      'Do not install this package directly: install `cdn-deploy`, whose launcher picks the\n' +
      'package of your platform from its optional dependencies.\n',
  );
  process.stdout.write(`${platform.package}@${version} -> ${outDir}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));

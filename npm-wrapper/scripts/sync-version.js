#!/usr/bin/env node
'use strict';
/**
 * Usage: sync-version.js [--check]
 *
 * Makes the main package agree with the crate and the platform table: its version and every
 * optionalDependencies pin equal Cargo.toml's version (exact pins, so a launcher never runs a
 * binary of another release), it depends on exactly the packages of platforms.json, and
 * lib/platforms.json and LICENSE are copies of their sources. With --check nothing is
 * written; every mismatch is listed and the exit code is 1.
 */

const fs = require('node:fs');
const path = require('node:path');
const { MAIN_PACKAGE, REPO, WRAPPER, crateVersion, platforms, writeJson } = require('./common.js');

function main(argv) {
  const check = argv.includes('--check');
  const version = crateVersion();
  const table = platforms();
  const manifestPath = path.join(MAIN_PACKAGE, 'package.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));

  const optional = {};
  for (const platform of Object.values(table)) optional[platform.package] = version;

  const mismatches = [];
  if (manifest.version !== version) {
    mismatches.push(`version is ${manifest.version}, Cargo.toml says ${version}`);
  }
  const current = manifest.optionalDependencies || {};
  for (const name of new Set([...Object.keys(current), ...Object.keys(optional)])) {
    if (current[name] !== optional[name]) {
      mismatches.push(
        `optionalDependencies["${name}"] is ${current[name] ?? 'missing'}, ` +
          `want ${optional[name] ?? 'none (not in platforms.json)'}`,
      );
    }
  }
  const copies = [
    [path.join(WRAPPER, 'platforms.json'), path.join(MAIN_PACKAGE, 'lib', 'platforms.json')],
    [path.join(REPO, 'LICENSE'), path.join(MAIN_PACKAGE, 'LICENSE')],
  ];
  for (const [from, to] of copies) {
    const have = fs.existsSync(to) ? fs.readFileSync(to) : null;
    if (!have || !have.equals(fs.readFileSync(from))) {
      mismatches.push(`${path.relative(REPO, to)} differs from ${path.relative(REPO, from)}`);
    }
  }

  if (check) {
    for (const line of mismatches) process.stderr.write(`out of sync: ${line}\n`);
    if (mismatches.length) {
      process.stderr.write('run: node npm-wrapper/scripts/sync-version.js\n');
      return 1;
    }
    process.stdout.write(`cdn-deploy ${version}: in sync\n`);
    return 0;
  }

  manifest.version = version;
  manifest.optionalDependencies = optional;
  writeJson(manifestPath, manifest);
  for (const [from, to] of copies) fs.copyFileSync(from, to);
  process.stdout.write(`cdn-deploy ${version}: ${mismatches.length} change(s)\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));

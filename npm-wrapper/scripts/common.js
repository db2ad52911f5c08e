'use strict';
/**
 * What the release scripts share: where things are, the crate's version and the platform
 * table. The crate is the source of the version so npm and crates.io never disagree.
 */

const fs = require('node:fs');
const path = require('node:path');

const WRAPPER = path.resolve(__dirname, '..');
const REPO = path.resolve(WRAPPER, '..');
const MAIN_PACKAGE = path.join(WRAPPER, 'cdn-deploy');

/**
 * The `version` of the `[package]` table of Cargo.toml. A regex over that one table is
 * enough for the file we write ourselves, and keeps the scripts free of dependencies.
 *
 * @param {string} [cargoToml]
 * @returns {string}
 */
function crateVersion(cargoToml = path.join(REPO, 'Cargo.toml')) {
  const text = fs.readFileSync(cargoToml, 'utf8');
  const table = /^\[package\][ \t]*\r?\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(text);
  const version = table && /^version\s*=\s*"([^"]+)"/m.exec(table[1]);
  if (!version) throw new Error(`no [package] version = "..." in ${cargoToml}`);
  return version[1];
}

/** @returns {Record<string, import('../cdn-deploy/lib/resolve.js').Platform>} */
function platforms() {
  return JSON.parse(fs.readFileSync(path.join(WRAPPER, 'platforms.json'), 'utf8'));
}

/**
 * @param {string} file
 * @param {unknown} value
 */
function writeJson(file, value) {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

module.exports = { MAIN_PACKAGE, REPO, WRAPPER, crateVersion, platforms, writeJson };

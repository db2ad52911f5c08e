#!/usr/bin/env node
'use strict';
/**
 * `cdn-deploy`: runs the prebuilt cargo-cdn-deploy binary of this platform as if it were this
 * process. The arguments and stdio go through untouched, signals are forwarded, and the exit
 * is mirrored: the same code, or death by the same signal, so `npm run build` and shells stop
 * exactly as they would with the binary itself.
 *
 * Launcher failures print one `cdn-deploy:` message and exit 1.
 */

const { spawn } = require('node:child_process');
const os = require('node:os');
const { LaunchError, currentHost, resolveBinary, spawnFailureMessage } = require('../lib/resolve.js');

/** Exit code of every launcher failure (the binary's own codes pass through unchanged). */
const LAUNCH_FAILED = 1;

/** The signals a user or a CI runner sends to stop a build step. */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * @param {string} message
 * @returns {never}
 */
function die(message) {
  process.stderr.write(`${message}\n`);
  process.exit(LAUNCH_FAILED);
}

let binary;
try {
  binary = resolveBinary(currentHost());
} catch (error) {
  if (error instanceof LaunchError) die(error.message);
  throw error;
}

const child = spawn(binary, process.argv.slice(2), {
  stdio: 'inherit',
  shell: false,
  windowsHide: true,
  // The binary names itself `npx cdn-deploy` in help and hints when it sees this.
  env: { ...process.env, CDN_DEPLOY_LAUNCHER: 'npx' },
});

/**
 * Handlers keep the launcher alive until the child has exited, so its exit can be mirrored.
 * On Windows a console Ctrl-C already reaches the child, and child.kill() there would
 * terminate it outright instead of letting it stop cleanly, so nothing is forwarded.
 * On Unix a terminal Ctrl-C reaches the child too; the binary ignores the echo that arrives
 * within a moment of the first.
 */
const handlers = new Map(
  FORWARDED.map((signal) => [
    signal,
    () => {
      if (process.platform !== 'win32' && child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
      }
    },
  ]),
);
for (const [signal, handler] of handlers) process.on(signal, handler);

let finished = false;

child.on('error', (error) => {
  if (finished) return;
  finished = true;
  die(spawnFailureMessage(error, binary));
});

child.on('exit', (code, signal) => {
  if (finished) return;
  finished = true;
  if (signal) {
    // Die by the same signal, so the parent (a shell, npm, make) sees what really happened.
    for (const [name, handler] of handlers) process.removeListener(name, handler);
    const number = os.constants.signals[signal] || 0;
    process.exitCode = 128 + number;
    process.kill(process.pid, signal);
    // Only reached if the signal cannot kill node (SIGPIPE is ignored, for one): exit with
    // the shell's convention for death by signal instead.
    setTimeout(() => process.exit(128 + number), 500);
    return;
  }
  process.exit(code === null ? LAUNCH_FAILED : code);
});

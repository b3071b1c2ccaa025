// Jest's globalSetup and globalTeardown: every test file's temporary folders (and those of the
// steps, runners and tools the tests start, which inherit TMPDIR) go under one folder per run,
// removed when the run ends, so a run leaves nothing in the system's temporary folder. Mode 1777,
// as /tmp: the tests that run a step as `nobody` write there too.
const { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const KEY = 'JEST_OCTOPUS_DR_TEMP_ROOT';

function setup() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-test-run-'));
  chmodSync(root, 0o1777);
  process.env[KEY] = root;
  process.env.TMPDIR = root;
}

/** Folders a test made read-only (the fault tests do) cannot be emptied by a user who is not root. */
function writable(dir) {
  try {
    chmodSync(dir, 0o700);
    for (const entry of readdirSync(dir)) {
      const child = path.join(dir, entry);
      if (statSync(child, { throwIfNoEntry: false })?.isDirectory()) writable(child);
    }
  } catch {
    // Removed meanwhile, or a mount: rmSync below says what is left.
  }
}

function teardown() {
  const root = process.env[KEY];
  if (!root) return;
  try {
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    writable(root);
    try {
      rmSync(root, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      process.stderr.write(`Could not remove the tests' temporary folder ${root}: ${error.message}\n`);
    }
  }
}

module.exports = { setup, teardown };

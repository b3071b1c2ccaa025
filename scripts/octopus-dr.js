#!/usr/bin/env node
// `octopus-dr <step> [options]`: runs a built step (build/steps/<step>.js) from the command line.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const stepsDir = path.join(__dirname, '..', 'build', 'steps');
const available = fs.existsSync(stepsDir)
  ? fs.readdirSync(stepsDir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort()
  : [];
const [step, ...rest] = process.argv.slice(2);

if (!step || step === '--help' || step === '-h') {
  process.stdout.write(
    'Usage: octopus-dr <step> [options]   (octopus-dr <step> --help lists its parameters)\n\n' +
      (available.length ? `Steps:\n${available.map((s) => `  ${s}`).join('\n')}\n` : 'No steps built yet: run `npm run build`.\n'),
  );
  process.exitCode = step ? 0 : 2;
} else if (!available.includes(step)) {
  process.stderr.write(
    available.length
      ? `Unknown step "${step}". Steps: ${available.join(', ')}.\n`
      : 'No steps built yet: run `npm ci && npm run build` first.\n',
  );
  process.exitCode = 2;
} else {
  const bundle = path.join(stepsDir, `${step}.js`);
  process.argv = [process.argv[0], bundle, ...rest];
  require(bundle);
}

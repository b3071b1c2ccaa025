// Every template's description ends the same way: what it needs on the worker, and where it comes from.
export const NODE_REQUIREMENT =
  '**Requires Node.js 18 or newer on the worker.** Run the step in the `octopusdeploy/worker-tools` container image ' +
  '(it has Node.js), install Node.js from https://nodejs.org or your package manager, or set *Node.js executable* ' +
  'to the path of a `node` binary.';

export const PROJECT_LINK = 'Part of [octopus-dr](https://github.com/octopus-dr/octopus-dr).';

/** A template description: the step's own paragraphs, then the shared requirement and link. */
export function stepDescription(...paragraphs: string[]): string {
  return [...paragraphs, NODE_REQUIREMENT, PROJECT_LINK].join('\n\n');
}

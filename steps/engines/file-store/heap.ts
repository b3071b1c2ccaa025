// V8's heap sizing for the long file-store runs. Left alone, the main thread's young generation
// grows to 2 x 16 MiB and its old generation to ~60 MiB of mostly dead objects before a full
// collection (one per verify at scale 1), so that garbage, not live data, drove peak RSS over
// 200 MiB (docs/design.md, "Peak memory at scale 1"). Both flags are read by V8 at each
// collection, so setting them at run time works (Node 18-20; a flag V8 no longer knows is ignored
// with a line on stderr, never a failure). They are process-wide: each setting is put back to
// V8's default when the run that asked for it ends.
import { setFlagsFromString } from 'node:v8';

/** V8's defaults (Node 18-20): the young generation doubles when it fills; the old one grows by V8's own heuristics. */
const DEFAULTS = { semiSpaceGrowthFactor: 2, heapGrowingPercent: 0 };

let holders = { young: 0, old: 0 };

function apply(): void {
  setFlagsFromString(`--semi-space-growth-factor=${holders.young > 0 ? 1 : DEFAULTS.semiSpaceGrowthFactor}`);
  setFlagsFromString(`--heap-growing-percent=${holders.old > 0 ? 20 : DEFAULTS.heapGrowingPercent}`);
}

/**
 * Keeps the young generation at its first size (1 MiB semi-spaces): its garbage is collected
 * sooner and more cheaply (fewer survivors copied per scavenge, measured). With `readOnly` (verify,
 * restore: a small live heap, ~25 MiB at scale 1) the old generation also grows by only 20 % over
 * what survived the last full collection; the backup's write phase keeps too much alive for that
 * (7 s more of full collections, measured), so it does not ask. Returns the function that puts it back.
 */
export function keepHeapSmall(options: { readOnly: boolean }): () => void {
  holders.young += 1;
  if (options.readOnly) holders.old += 1;
  apply();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holders = { young: holders.young - 1, old: holders.old - (options.readOnly ? 1 : 0) };
    apply();
  };
}

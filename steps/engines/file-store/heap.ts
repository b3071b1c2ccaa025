// The V8 flags of the file-store runs (the heap's sizing; in a step's own process, no optimizing
// compiler for a full backup), set ONCE per process before the first of our threads starts, and
// never changed or put back. V8's flags are process-wide, read by every thread's heap, and Node
// documents a change after start as undefined behaviour ("including crashes"): until stop 22 a run
// put the defaults back as its threads were being ended, and each thread set `--expose-gc` as it
// started, while the others ran (the likeliest cause of a restore killed by a signal in CI).
// A step is one short process: nothing needs putting back, and the first file-store run chooses.
// No documented alternative reaches the main thread's heap at run time: `--max-semi-space-size`
// must be on node's command line, which a user running `node restore-file-store.js` in a disaster
// would not give, and Worker `resourceLimits` reach only the threads.
import v8 = require('node:v8');

/** What a run does to the heap: a backup keeps much alive while it writes; verify and restore little (~25 MiB at scale 1). */
export type HeapRunKind = 'backup' | 'read';

const FLAGS: Record<HeapRunKind, readonly string[]> = {
  // A backup's old generation grows by 50 % over what survived the last full collection: the
  // backup step's verify before retention runs in the same process with these flags, and peaked
  // at 205-208 MiB at scale 1 with V8's own growth, 172 MiB with 50 %. 20 % would cost the write
  // phase, which keeps much alive, 6.8 s of full collections instead of 1.0 s; 50 % costs 32 full
  // collections instead of 13 (~0.5 s more of pauses at scale 1). No small young generation: V8
  // puts --semi-space-growth-factor back to 2 when it creates an isolate (Heap::ConfigureHeap),
  // so the first thread undoes it; and where no thread starts (the unchanged incremental) V8's
  // default is cheaper: 10 scavenges instead of 27 at scale 0.3 (peak RSS 77-79 against 72-74 MiB).
  backup: ['--heap-growing-percent=50'],
  // Verify and restore keep little alive (~25 MiB at scale 1); the rest of a 75-94 MiB heap was
  // garbage (docs/design.md, "Peak memory at scale 1"). The young generation stays at 1 MiB
  // semi-spaces while the manifest and central directories are read, until V8 creates the first
  // thread's isolate (verify at scale 0.3: 134-137 against 143-151 MiB without; V8 writes the flag
  // then, once, before any of our threads runs our code), and the old generation grows by only
  // 20 % over what survived the last full collection (V8 reads it at each one).
  read: ['--semi-space-growth-factor=1', '--heap-growing-percent=20'],
};

// Kept on node:v8's own module object, not in this module: jest gives each test file its own copy
// of this module but shares Node's built-in ones, so a jest worker, like a step, sets them once.
const CHOSEN = Symbol.for('octopus-dr.file-store.heap-settings');
const GC_EXPOSED = Symbol.for('octopus-dr.file-store.gc-exposed');
const COMPILER_OFF_ALLOWED = Symbol.for('octopus-dr.file-store.optimizing-compiler-off-allowed');
const COMPILER_OFF = Symbol.for('octopus-dr.file-store.optimizing-compiler-off');
const processWide = v8 as unknown as { [CHOSEN]?: HeapRunKind; [GC_EXPOSED]?: boolean; [COMPILER_OFF_ALLOWED]?: boolean; [COMPILER_OFF]?: boolean };

/** TurboFan off: `--turbofan` since V8 10.7 (Node 20 has 11.3); Node 18's V8 10.2 knows only `--opt`, an alias V8 means to drop. */
const NO_OPTIMIZING_COMPILER = Number(process.versions.v8.split('.')[0]) >= 11 ? '--no-turbofan' : '--no-opt';

/**
 * Says this process is a backup step's own (its program's entry calls this), so that a full
 * backup may turn V8's optimizing compiler off for the rest of it (see
 * optimizingCompilerOffForFullBackup). Engines run in a shared process (jest, the benchmarks,
 * which run SQL and S3 simulators beside them) never do: there it would slow everything after.
 */
export function allowFullBackupToTurnOffOptimizingCompiler(): void {
  processWide[COMPILER_OFF_ALLOWED] = true;
}

/**
 * No TurboFan for a full backup, in a process that allowed it, before the backup starts a thread.
 * Its work is zlib, SHA-256, CRC-32 and the kernel's copies, while V8 optimized ~220 functions of
 * ours across the main thread and the workers of a scale-0.3 full backup, ~9 % of its CPU (perf).
 * Without it, scale 0.3: 3.00 s against 3.29 s, CPU 5.20 against 5.63 s; scale 1 within the noise
 * (9.59 and 10.11 s against 10.14 and 10.13 s), peak RSS ~5 MiB higher. Not for an incremental
 * that builds on a set: an unchanged one at scale 1 is JavaScript (the scan, the manifest) and took
 * 203 against 182 ms without it. The backup step's verify before retention, in the same process,
 * runs without it too (verify and restore neither gained nor lost measurably: restore 5.72 against
 * 5.61 s, within the noise). docs/design.md, "Stop 34".
 */
export function optimizingCompilerOffForFullBackup(): void {
  if (!processWide[COMPILER_OFF_ALLOWED] || processWide[COMPILER_OFF]) return;
  processWide[COMPILER_OFF] = true;
  v8.setFlagsFromString(NO_OPTIMIZING_COMPILER);
}

/**
 * Chooses the heap settings for this process if no file-store run has yet, and returns the kind
 * they were chosen for. Call it at the start of a run, before it starts any thread.
 */
export function chooseHeapSettingsOnce(kind: HeapRunKind): HeapRunKind {
  exposeGcToThreadsOnce();
  const chosen = processWide[CHOSEN];
  if (chosen) return chosen;
  processWide[CHOSEN] = kind;
  for (const flag of FLAGS[kind]) v8.setFlagsFromString(flag);
  return kind;
}

/**
 * Threads started from now on find `gc` in their global scope (V8 installs it in each new context
 * while the flag is set): the small-file workers and the restore's entry threads free their
 * buffers with young-generation collections. Call it before starting a thread that uses it.
 */
export function exposeGcToThreadsOnce(): void {
  if (processWide[GC_EXPOSED]) return;
  processWide[GC_EXPOSED] = true;
  v8.setFlagsFromString('--expose-gc');
}

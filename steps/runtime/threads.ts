// Ending a worker thread. Node's event loop does not wait for a thread that is being terminated:
// with nothing else pending, the process exits, with code 0, before the thread's 'exit' arrives,
// in the middle of whatever awaited it (measured: a backup that hit a full disk while its workers
// were busy ended green, without a last line). A timer keeps the loop alive until the thread has
// exited, for at most `waitMs` (a thread blocked in a system call cannot be stopped; the step then
// goes on, and the process ends it when it exits).
import type { Worker } from 'node:worker_threads';

export async function endThread(worker: Worker, waitMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
  try {
    await Promise.race([worker.terminate().then(() => undefined, () => undefined), gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

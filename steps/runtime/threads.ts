// Ending a worker thread: cooperatively, never by cutting it off.
//
// worker.terminate() stops a thread wherever its JavaScript is, and Node then frees what the
// thread held. A zlib handle caught between its creation and its init (inflateRawSync and
// deflateRawSync create one per call) fails Node's CHECK "close before init" as it is freed, and
// that aborts the whole process (SIGABRT, no last line; measured: docs/design.md, "Ending the
// worker threads"). So the main thread raises the thread's stop flag (an Int32 in shared memory,
// which the thread reads before each job and between the chunks of a long one) and posts a stop
// message (which wakes a thread waiting for work). The thread finishes the job in hand, skips the
// queued ones without answering, closes its port and exits on its own. terminate() is left only
// as a fallback, after `stopMs`.
//
// Node's event loop does not wait for a thread that is ending: with nothing else pending, the
// process exits, with code 0, before the thread's 'exit' arrives, in the middle of whatever
// awaited it (measured: a backup that hit a full disk while its workers were busy ended green,
// without a last line). A timer keeps the loop alive until the thread has exited, for at most
// `stopMs` and then `terminateWaitMs` (a thread blocked in a system call, such as an open() of a
// named pipe, can be neither stopped nor terminated; the step then goes on, and the process ends
// it when it exits).
import type { Worker } from 'node:worker_threads';

/** The message that hands a thread its stop flag, and the one that asks it to stop. */
const STOP_FLAG_KEY = 'threadStopFlag';
const STOP_KEY = 'threadStop';

/**
 * The thread's half, for a thread run from source with `eval` (it cannot import): put it before
 * the thread's code. It defines `stopRequested()`, for a long job to check between its chunks,
 * and `onJobs(handle)`, the thread's one message listener: it calls `handle` for each message
 * unless a stop was requested, and once one was, closes the port (the thread then exits, as
 * nothing else keeps it alive). A job abandoned because of the stop answers nothing: the main
 * thread fails it when the thread has exited.
 */
export const THREAD_STOP_SOURCE = `
let threadStopFlag;
function stopRequested() {
  return threadStopFlag !== undefined && Atomics.load(threadStopFlag, 0) !== 0;
}
function onJobs(handle) {
  const { parentPort } = require('node:worker_threads');
  let ending = false;
  const end = () => {
    if (ending) return;
    ending = true;
    parentPort.close();
  };
  parentPort.on('message', (message) => {
    if (ending) return;
    if (message && message.${STOP_FLAG_KEY}) {
      threadStopFlag = new Int32Array(message.${STOP_FLAG_KEY});
      return;
    }
    if ((message && message.${STOP_KEY}) || stopRequested()) return end();
    handle(message);
    if (stopRequested()) end();
  });
}
`;

export interface EndThreadOptions {
  /** How long the thread may take to finish the job in hand and exit. */
  stopMs?: number;
  /** How long to wait for a thread terminate() had to end. */
  terminateWaitMs?: number;
}

/**
 * A worker thread whose source includes THREAD_STOP_SOURCE (any other source is ended by the
 * fallback alone). Create it right after the Worker, before posting anything else to it.
 */
export class StoppableThread {
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private exited = false;
  private readonly exit: Promise<void>;
  private ending: Promise<void> | undefined;

  constructor(readonly worker: Worker) {
    this.exit = new Promise((resolve) =>
      worker.once('exit', () => {
        this.exited = true;
        resolve();
      }),
    );
    worker.postMessage({ [STOP_FLAG_KEY]: this.flag.buffer });
  }

  /** end() was called: the thread takes no more jobs. */
  get stopping(): boolean {
    return this.ending !== undefined;
  }

  /**
   * Asks the thread to stop and waits for its exit (at most `stopMs`, then terminate() and at
   * most `terminateWaitMs`). Once this returns, the thread has exited, unless it was blocked
   * in a system call through both waits. Every call returns the same promise.
   */
  end(options: EndThreadOptions = {}): Promise<void> {
    this.ending ??= this.endOnce(options.stopMs ?? 5000, options.terminateWaitMs ?? 1000);
    return this.ending;
  }

  private async endOnce(stopMs: number, terminateWaitMs: number): Promise<void> {
    if (this.exited) return;
    Atomics.store(this.flag, 0, 1);
    this.worker.postMessage({ [STOP_KEY]: true });
    if (await this.exitWithin(stopMs)) return;
    void this.worker.terminate().catch(() => undefined);
    await this.exitWithin(terminateWaitMs);
  }

  private async exitWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([this.exit.then(() => true), gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  }
}

// Ending a worker thread (steps/runtime/threads.ts): told to stop, a thread finishes the job in
// hand, answers no queued job, and exits on its own (code 0, never cut off by terminate(), which
// can abort the whole process in Node's zlib teardown); only a thread that does not stop is
// terminated, and one blocked in a system call is let go after a bounded wait.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { StoppableThread, THREAD_STOP_SOURCE } from '../../steps/runtime/threads';

/** A thread whose every job takes `ms` of busy work, then answers with the job's id. */
const SLOW_JOBS = `${THREAD_STOP_SOURCE}
const { parentPort } = require('node:worker_threads');
onJobs((job) => {
  const until = Date.now() + job.ms;
  while (Date.now() < until);
  parentPort.postMessage(job.id);
});`;

function started(source: string): { thread: StoppableThread; answered: number[]; exitCode: Promise<number> } {
  const worker = new Worker(source, { eval: true });
  const thread = new StoppableThread(worker);
  const answered: number[] = [];
  worker.on('message', (id: number) => answered.push(id));
  const exitCode = new Promise<number>((resolve) => worker.once('exit', resolve));
  return { thread, answered, exitCode };
}

test('told to stop, a thread answers the job in hand, skips the queued ones and exits on its own (code 0)', async () => {
  const { thread, answered, exitCode } = started(SLOW_JOBS);
  for (let id = 0; id < 20; id++) thread.worker.postMessage({ id, ms: 100 });
  // The first job is under way.
  while (answered.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await thread.end();
  // It exited by itself: terminate() would have made the code 1.
  expect(await exitCode).toBe(0);
  expect(answered.length).toBeLessThan(5);
  expect(answered).toEqual([...answered.keys()]);
  expect(thread.stopping).toBe(true);
});

test('an idle thread, and one that has not started yet, exit on their own when told to stop', async () => {
  const idle = started(SLOW_JOBS);
  idle.thread.worker.postMessage({ id: 1, ms: 0 });
  while (idle.answered.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const notYet = started(SLOW_JOBS);
  for (let id = 0; id < 5; id++) notYet.thread.worker.postMessage({ id, ms: 50 });
  await Promise.all([idle.thread.end(), notYet.thread.end()]);
  expect(await idle.exitCode).toBe(0);
  expect(await notYet.exitCode).toBe(0);
  // The stop flag was raised before the thread read its first job: none was done.
  expect(notYet.answered).toEqual([]);
});

test('end() is one promise however often it is called, and a thread that already exited ends at once', async () => {
  const { thread, exitCode } = started(`${THREAD_STOP_SOURCE}\nprocess.exit(4);`);
  expect(await exitCode).toBe(4);
  const first = thread.end();
  expect(thread.end()).toBe(first);
  await first;
});

test('a thread that never stops (it ignores the flag and the message) is terminated after stopMs', async () => {
  const { thread, exitCode } = started('setInterval(() => undefined, 1000);');
  await thread.end({ stopMs: 200, terminateWaitMs: 5000 });
  // terminate() makes the exit code 1.
  expect(await exitCode).toBe(1);
});

test('a thread blocked in open() of a named pipe cannot be ended: end() gives up after both waits and returns', async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'octopus-dr-threads-'));
  const fifo = path.join(work, 'pipe');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const { thread, answered, exitCode } = started(`${THREAD_STOP_SOURCE}
const { parentPort } = require('node:worker_threads');
parentPort.postMessage(0);
require('node:fs').openSync(${JSON.stringify(fifo)}, 'r');`);
  let exited = false;
  void exitCode.then(() => (exited = true));
  try {
    while (answered.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await thread.end({ stopMs: 100, terminateWaitMs: 100 });
    expect(exited).toBe(false);
  } finally {
    // A writer lets the open() return (ENXIO: the thread has not reached it yet); the termination then takes effect.
    for (let tries = 0; ; tries++) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENXIO' || tries === 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    expect(await exitCode).toBe(1);
    rmSync(work, { recursive: true, force: true });
  }
});

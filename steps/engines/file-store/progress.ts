// Turns byte and file counts into the step's progress bar: percent, rate and time left.
import type { EngineContext } from '../../runtime/engine-context';
import { formatBytes, formatDuration } from '../../runtime/format';

/** What a backup, verify or restore has done so far. */
export interface FileStoreProgress {
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
}

export function progressReporter(context: Pick<EngineContext, 'progress'>, verb: string, now: () => number = Date.now): (p: FileStoreProgress) => void {
  const started = now();
  let lastAt = 0;
  return (p) => {
    const at = now();
    const finished = p.filesDone === p.filesTotal && p.bytesDone >= p.bytesTotal;
    // The context throttles output; this only avoids formatting on every chunk.
    if (!finished && at - lastAt < 250) return;
    lastAt = at;
    const seconds = (at - started) / 1000;
    const rate = seconds > 0 ? p.bytesDone / seconds : 0;
    const fraction = p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : p.filesTotal > 0 ? p.filesDone / p.filesTotal : 1;
    const left = rate > 0 ? (p.bytesTotal - p.bytesDone) / rate : NaN;
    context.progress(
      fraction * 100,
      `${verb} ${p.filesDone}/${p.filesTotal} files, ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}, ${formatBytes(rate)}/s, ${finished ? 'done' : `about ${formatDuration(left)} left`}`,
    );
  };
}

// Turns byte and file counts into the step's progress bar: percent, rate and time left.
import type { StepContext } from '../runtime/step-context';
import type { FileStoreProgress } from './backup';

function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} KB`;
  return `${Math.round(bytes)} bytes`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export { formatBytes, formatDuration };

export function progressReporter(context: StepContext, verb: string, now: () => number = Date.now): (p: FileStoreProgress) => void {
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

// The file-store engine fails only with this: a StepFailure whose message says what failed and
// what to do, which runStep reports as it is.
import { StepFailure } from '../../runtime/errors';

export class FileStoreError extends StepFailure {
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'FileStoreError';
  }
}

/** An OS error's reason with its code in front once (Node's message usually starts with it already: "EACCES: permission denied, ..."). */
export function withErrorCode(code: string, message: string): string {
  return message.startsWith(code) ? message : `${code}: ${message}`;
}

// The file-store engine fails only with this: a StepFailure whose message says what failed and
// what to do, which runStep reports as it is.
import { StepFailure } from '../../runtime/errors';

export class FileStoreError extends StepFailure {
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'FileStoreError';
  }
}

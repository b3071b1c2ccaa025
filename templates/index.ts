// Every step template octopus-dr ships, in the order the README lists them.
import { checkWorker } from './check-worker';
import type { StepTemplate } from './model';

export const templates: readonly StepTemplate[] = [checkWorker];

// Every step template octopus-dr ships, in the order the README lists them.
import { checkWorker } from './check-worker';
import { maintenanceMode } from './maintenance-mode';
import type { StepTemplate } from './model';
import { verifyMasterKey } from './verify-master-key';

export const templates: readonly StepTemplate[] = [checkWorker, maintenanceMode, verifyMasterKey];

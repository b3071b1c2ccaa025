// Every step template octopus-dr ships, in the order the docs list them.
import { backupDatabase } from './backup-database';
import { backupFileStore } from './backup-file-store';
import { checkWorker } from './check-worker';
import { copyOffsite } from './copy-offsite';
import { fetchOffsite } from './fetch-offsite';
import { maintenanceMode } from './maintenance-mode';
import type { StepTemplate } from './model';
import { restoreDatabase } from './restore-database';
import { restoreFileStore } from './restore-file-store';
import { testRestore } from './test-restore';
import { verifyMasterKey } from './verify-master-key';

export const templates: readonly StepTemplate[] = [checkWorker, maintenanceMode, verifyMasterKey, backupDatabase, restoreDatabase, backupFileStore, restoreFileStore, testRestore, copyOffsite, fetchOffsite];

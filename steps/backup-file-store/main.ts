import { backupFileStore as template } from '../../templates/backup-file-store';
import { allowFullBackupToTurnOffOptimizingCompiler } from '../engines/file-store';
import { main } from '../runtime/run-step';
import { backupFileStoreStep } from './backup-file-store';

// This process is the step's alone: a full backup may turn V8's optimizing compiler off (heap.ts).
allowFullBackupToTurnOffOptimizingCompiler();
main(template, backupFileStoreStep);

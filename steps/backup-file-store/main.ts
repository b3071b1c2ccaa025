import { backupFileStore as template } from '../../templates/backup-file-store';
import { main } from '../runtime/run-step';
import { backupFileStoreStep } from './backup-file-store';

main(template, backupFileStoreStep);

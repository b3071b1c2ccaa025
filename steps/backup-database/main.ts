import { backupDatabase as template } from '../../templates/backup-database';
import { main } from '../runtime/run-step';
import { backupDatabase } from './backup-database';

main(template, backupDatabase);

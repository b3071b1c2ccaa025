import { restoreDatabase as template } from '../../templates/restore-database';
import { main } from '../runtime/run-step';
import { restoreDatabaseStep } from './restore-database';

main(template, restoreDatabaseStep);

import { testRestore as template } from '../../templates/test-restore';
import { main } from '../runtime/run-step';
import { testLatestBackup } from './test-restore';

main(template, (params, context) => testLatestBackup(params, context));

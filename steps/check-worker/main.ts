import { checkWorker as template } from '../../templates/check-worker';
import { main } from '../runtime/run-step';
import { checkWorker } from './check-worker';

main(template, checkWorker);

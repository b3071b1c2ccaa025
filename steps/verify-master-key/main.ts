import { verifyMasterKey as template } from '../../templates/verify-master-key';
import { main } from '../runtime/run-step';
import { verifyMasterKey } from './verify-master-key';

main(template, verifyMasterKey);

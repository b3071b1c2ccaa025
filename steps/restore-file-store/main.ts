import { restoreFileStore as template } from '../../templates/restore-file-store';
import { main } from '../runtime/run-step';
import { restoreFileStoreStep } from './restore-file-store';

main(template, restoreFileStoreStep);

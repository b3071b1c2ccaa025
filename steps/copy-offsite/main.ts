// The guard runs before the SDKs are loaded (imports run in order).
import './node-guard';
import { copyOffsite as template } from '../../templates/copy-offsite';
import { main } from '../runtime/run-step';
import { copyOffsiteStep } from './copy-offsite';

main(template, copyOffsiteStep);

// The guard runs before the SDKs are loaded (imports run in order).
import './node-guard';
import { fetchOffsite as template } from '../../templates/fetch-offsite';
import { main } from '../runtime/run-step';
import { fetchOffsiteStep } from './fetch-offsite';

main(template, fetchOffsiteStep);

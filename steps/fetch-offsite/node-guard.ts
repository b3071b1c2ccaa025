import { requireNodeMajor } from '../runtime/node-version-guard';

requireNodeMajor(20, 'Octopus DR - Fetch Backups from Offsite');

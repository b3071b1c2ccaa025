import { requireNodeMajor } from '../shared/runtime/node-version-guard';

requireNodeMajor(20, 'Octopus DR - Fetch Backups from Offsite');

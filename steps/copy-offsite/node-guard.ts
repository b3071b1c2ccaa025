import { requireNodeMajor } from '../shared/runtime/node-version-guard';

requireNodeMajor(20, 'Octopus DR - Copy Backups Offsite');

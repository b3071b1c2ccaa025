import { maintenanceMode as template } from '../../templates/maintenance-mode';
import { main } from '../runtime/run-step';
import { runMaintenanceMode } from './maintenance-mode';

main(template, runMaintenanceMode);

// The Octopus REST API engine: connecting (with messages that say what to do), maintenance mode and
// running tasks. Steps import from here, nothing deeper. A step that only reads a standby's version
// imports server-url.ts and network-hints.ts through steps/engines/standby instead, so its bundle does
// not carry @octopusdeploy/api-client.
export {
  compareVersions,
  connectToOctopus,
  DEFAULT_REQUEST_TIMEOUT_MS,
  describeOctopusError,
  MINIMUM_SERVER_VERSION,
  normaliseServerUrl,
  octopusCall,
  OctopusApiError,
  type ConnectOptions,
  type OctopusConnection,
} from './connection';
export {
  getCurrentUser,
  getMaintenanceConfiguration,
  listRunningTasks,
  setMaintenanceMode,
  type MaintenanceConfiguration,
  type OctopusUser,
  type ServerTaskSummary,
} from './maintenance';
export { NETWORK_HINTS } from './network-hints';

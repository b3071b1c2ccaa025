// Maintenance mode and running tasks: routes the api-client has no repository for, called through
// its generic methods (see the reference, "Coverage of the publisher's needs").
import { octopusCall, type OctopusConnection } from './connection';

export interface MaintenanceConfiguration {
  Id: string;
  IsInMaintenanceMode: boolean;
  LastModifiedBy?: string;
  LastModifiedOn?: string;
  [field: string]: unknown;
}

export interface ServerTaskSummary {
  Id: string;
  Name: string;
  Description: string;
  State: string;
  SpaceId?: string | null;
}

/** The user an API key belongs to (`GET /api/users/me`). */
export interface OctopusUser {
  Id: string;
  Username: string;
  DisplayName?: string;
  /** A service account: it has API keys and no password, so no person signs in as it. */
  IsService?: boolean;
  [field: string]: unknown;
}

interface TaskCollection {
  Items: ServerTaskSummary[];
  TotalResults: number;
}

export async function getMaintenanceConfiguration(connection: OctopusConnection, apiKeySource?: string): Promise<MaintenanceConfiguration> {
  return octopusCall(connection, 'reading the maintenance configuration', () => connection.client.get<MaintenanceConfiguration>('~/api/maintenanceconfiguration'), apiKeySource);
}

export async function setMaintenanceMode(
  connection: OctopusConnection,
  current: MaintenanceConfiguration,
  on: boolean,
  apiKeySource?: string,
): Promise<MaintenanceConfiguration> {
  // PUT the resource as read, with the flag changed, as the Octopus web UI does.
  return octopusCall(
    connection,
    `turning maintenance mode ${on ? 'on' : 'off'} (needs the AdministerSystem permission)`,
    () => connection.client.doUpdate<MaintenanceConfiguration>('~/api/maintenanceconfiguration', { ...current, IsInMaintenanceMode: on }),
    apiKeySource,
  );
}

/** Tasks executing (or being cancelled) anywhere on the server. */
export async function listRunningTasks(connection: OctopusConnection, apiKeySource?: string): Promise<ServerTaskSummary[]> {
  const tasks = await octopusCall(
    connection,
    'listing running tasks',
    () => connection.client.get<TaskCollection>('~/api/tasks{?states,take}', { states: ['Executing', 'Cancelling'], take: 1000 }),
    apiKeySource,
  );
  return tasks.Items;
}

/** The user the API key belongs to. */
export async function getCurrentUser(connection: OctopusConnection, apiKeySource?: string): Promise<OctopusUser> {
  return octopusCall(connection, "reading the API key's user", () => connection.client.get<OctopusUser>('~/api/users/me'), apiKeySource);
}

// Server administration: maintenance mode and server status.
import { route, validationError, type Request, type Route } from '../http';
import { now, type Json } from '../store';
import { bodyOf, type RouteContext } from './shared';

export function administrationRoutes({ state }: RouteContext): Route[] {
  const serverStatus = (): Json => ({
    IsDatabaseEncrypted: true,
    IsUpgradeAvailable: false,
    MaximumAvailableVersion: state.version,
    MaximumAvailableVersionCoveredByLicense: state.version,
    MaintenanceExpires: '9999-12-31T23:59:59.999+00:00',
    IsInMaintenanceMode: state.maintenance.IsInMaintenanceMode,
    IsMajorMinorUpgrade: false,
    IsPotentialClone: false,
    Links: { Self: '/api/serverstatus', Health: '/api/serverstatus/health', Timezones: '/api/serverstatus/timezones' },
  });
  const maintenanceConfiguration = (): Json => ({
    Id: 'maintenance',
    ...state.maintenance,
    Links: { Self: '/api/maintenanceconfiguration' },
  });
  const setMaintenance = (request: Request): Json => {
    const body = bodyOf(request);
    if (typeof body.IsInMaintenanceMode !== 'boolean') throw validationError('IsInMaintenanceMode must be true or false.');
    state.maintenance = { IsInMaintenanceMode: body.IsInMaintenanceMode, LastModifiedBy: request.user, LastModifiedOn: now() };
    return maintenanceConfiguration();
  };
  // The API key's user, as Octopus answers /api/users/me (UserResource); Id and IsService from the key's grant.
  const currentUser = (request: Request): Json => {
    const known = state.users.get(request.user);
    const id = known?.Id ?? `Users-${request.user}`;
    return {
      Id: id,
      Username: request.user,
      DisplayName: request.user,
      IsActive: true,
      IsService: known?.IsService ?? false,
      EmailAddress: '',
      CanPasswordBeEdited: !(known?.IsService ?? false),
      IsRequestor: true,
      Links: { Self: `/api/users/${id}` },
    };
  };
  return [
    route('GET', '/api/users/me', undefined, currentUser),
    route('GET', '/api/maintenanceconfiguration', undefined, maintenanceConfiguration),
    route('PUT', '/api/maintenanceconfiguration', 'AdministerSystem', setMaintenance),
    route('PUT', '/api/maintenanceconfiguration/v1', 'AdministerSystem', (r) => ({ Resource: setMaintenance(r) })),
    route('GET', '/api/serverstatus', undefined, serverStatus),
    route('GET', '/api/serverstatus/health', undefined, () => ({
      IsOperatingNormally: true,
      Description: state.maintenance.IsInMaintenanceMode ? 'The server is in maintenance mode.' : 'All good.',
      IsEntireClusterReadOnly: false,
      IsEntireClusterDrainingTasks: false,
      IsCompliantWithLicense: true,
    })),
    route('GET', '/api/serverstatus/timezones', undefined, () => [
      { Id: 'UTC', Name: '(UTC) Coordinated Universal Time' },
      { Id: 'GMT Standard Time', Name: '(UTC+00:00) Dublin, Edinburgh, Lisbon, London' },
      { Id: 'W. Europe Standard Time', Name: '(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna' },
      { Id: 'Eastern Standard Time', Name: '(UTC-05:00) Eastern Time (US & Canada)' },
      { Id: 'AUS Eastern Standard Time', Name: '(UTC+10:00) Canberra, Melbourne, Sydney' },
    ]),
  ];
}

// What every route file of the Octopus simulator uses: the space prefix, request-body checks, and
// the lookups that answer 404 as Octopus does.
import { notFound, validationError, type HttpError, type Request } from '../http';
import type { Json, ServerState, SpaceState } from '../store';

export const SPACE = '/api/{spaceId}';

export function isBlank(value: unknown): boolean {
  return typeof value !== 'string' || value.trim() === '';
}

export function bodyOf(request: Request): Json {
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw validationError('A JSON object is required in the request body.');
  return body as Json;
}

export function created(body: unknown): { status: number; body: unknown } {
  return { status: 201, body };
}

/**
 * A write against an old `Version` of a versioned document: refused as a validation failure (400), not
 * 409. The status is Octopus's (OctopusDeploy/Issues#716, the C# client's factory maps it to a
 * validation exception); the wording is ours [I], and the live suite records the server's own.
 */
export function staleVersion(what: string, sent: unknown, current: number): HttpError {
  return validationError(
    `The ${what} has been modified since you loaded it: you sent version ${String(sent)}, the current version is ${current}. Reload it and save your changes again.`,
  );
}

/** What Octopus answers a database route asked for a resource stored in Git (OctopusDeploy/Issues#9249). */
export const GIT_RESOURCE_ON_DATABASE_ROUTE =
  'Received a request for a version-controlled resource on a non-version control route. To access this resource, include a Git ref in the route.';

export function runbooksAreInGit(project: Json | undefined): boolean {
  return Boolean(project?.IsVersionControlled && project?.PersistenceSettings?.ConversionState?.RunbooksAreInGit);
}

/** The server's state and the lookups every resource's routes share. */
export interface RouteContext {
  state: ServerState;
  spaceOf(request: Request): SpaceState;
  find<T extends Json>(items: T[], id: string): T;
  projectOf(space: SpaceState, id: string): Json;
  /** Runbooks of a project that keeps them in Git are written through Git-ref routes only. */
  refuseGitRunbooks(space: SpaceState, projectId: string): void;
}

export function routeContext(state: ServerState): RouteContext {
  const spaceOf = (request: Request): SpaceState => {
    const id = request.params.spaceId;
    const space = state.spaces.find((s) => s.space.Id.toLowerCase() === id.toLowerCase());
    if (!space) throw notFound(id);
    return space;
  };
  const find = <T extends Json>(items: T[], id: string): T => {
    const item = items.find((i) => i.Id === id);
    if (!item) throw notFound(id);
    return item;
  };
  const projectOf = (space: SpaceState, id: string): Json => {
    const project = space.projects.find((p) => p.Id === id || p.Slug === id);
    if (!project) throw notFound(id);
    return project;
  };
  const refuseGitRunbooks = (space: SpaceState, projectId: string): void => {
    if (runbooksAreInGit(space.projects.find((p) => p.Id === projectId))) throw validationError(GIT_RESOURCE_ON_DATABASE_ROUTE);
  };
  return { state, spaceOf, find, projectOf, refuseGitRunbooks };
}

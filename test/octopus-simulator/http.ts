// HTTP plumbing of the Octopus API simulator: Octopus-shaped errors and collections, a small
// route table with `{name}` segments, and query parsing the way Octopus reads it (comma-joined
// arrays, "contains" name matching).

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors: string[] = [],
  ) {
    super(message);
  }
}

/** 400 the way Octopus reports a failed validation: a fixed headline and the problems in `Errors`. */
export function validationError(...errors: string[]): HttpError {
  return new HttpError(400, 'There was a problem with your request.', errors);
}

export function notFound(id: string): HttpError {
  return new HttpError(404, `The resource '${id}' was not found.`);
}

export type Query = URLSearchParams;

/** `ids=a,b` and repeated `ids=a&ids=b` both give [a, b]. */
export function queryList(query: Query, name: string): string[] | undefined {
  const values = query.getAll(name);
  if (values.length === 0) return undefined;
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

export function queryInt(query: Query, name: string, fallback: number): number {
  const value = query.get(name);
  if (value === null || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw validationError(`The value '${value}' is not valid for ${name}.`);
  return n;
}

type Resource = Record<string, any>;

/** An Octopus `ResourceCollection`: filtered by ids/partialName, paged by skip/take (default 30). */
export function collection(itemType: string, self: string, items: readonly Resource[], query: Query): object {
  let filtered = items;
  const ids = queryList(query, 'ids');
  if (ids) filtered = filtered.filter((item) => ids.includes(item.Id));
  const partialName = query.get('partialName');
  if (partialName) {
    const needle = partialName.toLowerCase();
    filtered = filtered.filter((item) => String(item.Name ?? '').toLowerCase().includes(needle));
  }
  const skip = queryInt(query, 'skip', 0);
  const take = queryInt(query, 'take', 30);
  const page = filtered.slice(skip, skip + take);
  const perPage = Math.max(take, 1);
  const pages = Math.max(1, Math.ceil(filtered.length / perPage));
  return {
    ItemType: itemType,
    TotalResults: filtered.length,
    ItemsPerPage: take,
    NumberOfPages: pages,
    LastPageNumber: pages - 1,
    Items: page,
    Links: {
      Self: `${self}?skip=${skip}&take=${take}`,
      Template: `${self}{?skip,take,ids,partialName}`,
      'Page.All': `${self}?skip=0&take=2147483647`,
      'Page.Current': `${self}?skip=${skip}&take=${take}`,
      'Page.Last': `${self}?skip=${(pages - 1) * perPage}&take=${take}`,
    },
  };
}

export interface Request {
  method: string;
  path: string;
  query: Query;
  params: Record<string, string>;
  body: unknown;
  /** Who is calling (the API key's user), for LastModifiedBy. */
  user: string;
}

export type Handler = (request: Request) => { status?: number; body: unknown } | unknown;

export interface Route {
  method: string;
  segments: string[];
  /** Permission the caller's API key needs; undefined = any authenticated caller; 'anonymous' = no key needed. */
  permission?: string;
  handler: Handler;
}

/** `/api/{spaceId}/projects/{id}` -> segments; `{x}` matches one path segment. */
export function route(method: string, pattern: string, permission: string | undefined, handler: Handler): Route {
  return { method, segments: pattern.split('/').filter((s) => s !== ''), permission, handler };
}

export function match(routes: readonly Route[], method: string, path: string): { route: Route; params: Record<string, string> } | 'method-not-allowed' | undefined {
  const parts = path.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  let pathMatched = false;
  let best: { route: Route; params: Record<string, string>; literals: number } | undefined;
  for (const candidate of routes) {
    if (candidate.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let literals = 0;
    let ok = true;
    for (let i = 0; i < parts.length; i++) {
      const segment = candidate.segments[i];
      if (segment.startsWith('{') && segment.endsWith('}')) params[segment.slice(1, -1)] = parts[i];
      else if (segment.toLowerCase() === parts[i].toLowerCase()) literals += 1;
      else {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    pathMatched = true;
    // The most specific route wins: `/api/tasks` over `/api/{spaceId}`, `actiontemplates/all` over `actiontemplates/{id}`.
    if (candidate.method === method && (!best || literals > best.literals)) best = { route: candidate, params, literals };
  }
  if (best) return { route: best.route, params: best.params };
  return pathMatched ? 'method-not-allowed' : undefined;
}

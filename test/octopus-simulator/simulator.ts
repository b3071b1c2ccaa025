// A protocol-faithful stand-in for the Octopus Server REST API, for tests and for trying the
// publisher without a server. The real `@octopusdeploy/api-client` talks to it over a socket.
// Routes, JSON shapes, status codes and error bodies follow ../shared/reference/octopus-api.md;
// where the reference marks a behaviour as inferred, the choice made here is commented.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpError, match, validationError, type Request, type Route } from './http';
import { buildRoutes } from './routes';
import { addProject, createState, type Json, type SeedOptions, type ServerState, type VersionControl } from './store';

export interface ApiKeyGrant {
  /** Shown as LastModifiedBy. */
  user?: string;
  /** Octopus permission names (e.g. `ActionTemplateCreate`), or 'all' for a system administrator. */
  permissions: readonly string[] | 'all';
  /** The user is a service account (API keys only, nobody signs in as it); default: a person. */
  isService?: boolean;
}

/** A test hook's answer to a request: an Octopus error with this status, or a connection dropped without an answer. */
export type InjectedFault = { status: number; message: string } | 'drop';

export interface SimulatorOptions extends SeedOptions {
  /** Accepted API keys. Without it, any key that starts with `API-` is an administrator's. */
  apiKeys?: Record<string, ApiKeyGrant>;
  /**
   * Largest request body accepted, like a server whose administrator set webMaxRequestBodySizeInBytes
   * (2026.1+): a larger one is answered 413 with no body, as Kestrel answers it.
   */
  maxRequestBodyBytes?: number;
}

export interface LoggedRequest {
  method: string;
  /** Path and query as received, e.g. `/api/Spaces-1/projects?partialName=DR`. */
  url: string;
  status: number;
  /** Size of the request body. */
  bytes: number;
}

export class OctopusSimulator {
  readonly state: ServerState;
  readonly requests: LoggedRequest[] = [];
  private readonly server: http.Server;
  private readonly routes: Route[];
  private readonly apiKeys?: Record<string, ApiKeyGrant>;
  readonly maxRequestBodyBytes?: number;
  private baseUrl = '';
  /** Test hook: decides, per request, whether to fail it instead of answering (undefined: answer normally). */
  fault?: (method: string, path: string) => InjectedFault | undefined;

  constructor(options: SimulatorOptions = {}) {
    this.state = createState(options);
    this.apiKeys = options.apiKeys;
    for (const grant of Object.values(options.apiKeys ?? {})) {
      const user = grant.user ?? 'api-user';
      this.state.users.set(user, { Id: `Users-${this.state.users.size + 1}`, IsService: grant.isService ?? false });
    }
    this.maxRequestBodyBytes = options.maxRequestBodyBytes;
    this.routes = buildRoutes(this.state);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.send(res, req, 500, { ErrorMessage: `Simulator failure: ${String(error)}`, Errors: [] });
      });
    });
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const address = this.server.address() as AddressInfo;
    this.baseUrl = `http://${host}:${address.port}`;
    return this.baseUrl;
  }

  get url(): string {
    return this.baseUrl;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Requests by HTTP method, e.g. `{ GET: 12, POST: 3 }`. */
  countsByMethod(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.requests) counts[r.method] = (counts[r.method] ?? 0) + 1;
    return counts;
  }

  /** Requests that may change state (anything but GET/HEAD). */
  writes(): LoggedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
  }

  resetRequestLog(): void {
    this.requests.length = 0;
  }

  /** Test hook: a server task in any state (e.g. an executing deployment that maintenance mode must wait for). */
  addTask(fields: { Name?: string; Description?: string; State?: string; SpaceId?: string | null }): Json {
    const id = `ServerTasks-${(this.state.counters.get('ServerTasks') ?? 0) + 1}`;
    this.state.counters.set('ServerTasks', Number(id.split('-')[1]));
    const state = fields.State ?? 'Executing';
    const task = {
      Id: id,
      SpaceId: fields.SpaceId === undefined ? 'Spaces-1' : fields.SpaceId,
      Name: fields.Name ?? 'Deploy',
      Description: fields.Description ?? 'Deploy a release',
      Arguments: {},
      State: state,
      Completed: null,
      QueueTime: new Date().toISOString(),
      StartTime: state === 'Queued' ? null : new Date().toISOString(),
      LastUpdatedTime: new Date().toISOString(),
      CompletedTime: null,
      ErrorMessage: '',
      HasBeenPickedUpByProcessor: state !== 'Queued',
      IsCompleted: false,
      FinishedSuccessfully: false,
      HasPendingInterruptions: false,
      CanRerun: false,
      HasWarningsOrErrors: false,
      Duration: '1 second',
      Links: { Self: `/api/tasks/${id}` },
    };
    this.state.tasks.push(task);
    return task;
  }

  /**
   * Test hook: a Config-as-Code project in the Default space (such projects are converted in the UI, not
   * created through the database API). With `runbooksInGit`, the database runbook routes refuse it.
   */
  addVersionControlledProject(name: string, versionControl: VersionControl = { runbooksInGit: true }): Json {
    const space = this.state.spaces[0];
    return addProject(this.state, space, { Name: name, ProjectGroupId: space.projectGroups[0].Id, LifecycleId: space.lifecycles[0].Id }, versionControl);
  }

  /** Test hook: finish a task. */
  completeTask(id: string, outcome: 'Success' | 'Failed' | 'Canceled' = 'Success'): void {
    const task = this.state.tasks.find((t) => t.Id === id);
    if (!task) throw new Error(`No task ${id}`);
    Object.assign(task, {
      State: outcome,
      IsCompleted: true,
      FinishedSuccessfully: outcome === 'Success',
      CompletedTime: new Date().toISOString(),
      ErrorMessage: outcome === 'Failed' ? 'The task failed' : '',
    });
  }

  private authenticate(req: http.IncomingMessage): { user: string; grant: ApiKeyGrant } | undefined {
    const header = req.headers['x-octopus-apikey'];
    let key = (Array.isArray(header) ? header[0] : header) ?? '';
    const authorization = req.headers.authorization ?? '';
    if (!key && authorization.startsWith('Bearer ')) key = authorization.slice('Bearer '.length);
    key = key.trim();
    if (!key) return undefined;
    if (this.apiKeys) {
      const grant = this.apiKeys[key];
      return grant ? { user: grant.user ?? 'api-user', grant } : undefined;
    }
    return key.startsWith('API-') ? { user: 'admin', grant: { permissions: 'all' } } : undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://simulator');
    const method = (req.method ?? 'GET').toUpperCase();
    const size = chunks.reduce((total, chunk) => total + chunk.length, 0);
    if (this.maxRequestBodyBytes !== undefined && size > this.maxRequestBodyBytes) {
      this.send(res, req, 413, undefined, size);
      return;
    }
    const injected = this.fault?.(method, url.pathname);
    if (injected === 'drop') {
      this.requests.push({ method, url: req.url ?? '/', status: 0, bytes: size });
      req.socket.destroy();
      return;
    }
    try {
      if (injected) throw new HttpError(injected.status, injected.message);
      const found = match(this.routes, method, url.pathname);
      if (found === 'method-not-allowed') throw new HttpError(405, `The requested HTTP method ${method} is not allowed for this resource.`);
      if (!found) throw new HttpError(404, 'The resource you requested was not found.');
      let user = 'anonymous';
      if (found.route.permission !== 'anonymous') {
        const caller = this.authenticate(req);
        // Wording as the Octopus web UI shows it for a missing or revoked key [I].
        if (!caller) throw new HttpError(401, 'You must be logged in to perform this action. Please provide a valid API key or log in again.');
        user = caller.user;
        const needed = found.route.permission;
        if (needed && caller.grant.permissions !== 'all' && !caller.grant.permissions.includes(needed)) {
          throw new HttpError(
            403,
            `You do not have permission to perform this action. Please contact your Octopus administrator. Missing permission: ${needed}`,
          );
        }
      }
      let body: unknown;
      if (chunks.length > 0) {
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            throw validationError('The request body is not valid JSON.');
          }
        }
      }
      const request: Request = { method, path: url.pathname, query: url.searchParams, params: found.params, body, user };
      const result = found.route.handler(request) as { status?: number; body: unknown } | undefined;
      const status = result && typeof result === 'object' && 'body' in result ? (result.status ?? 200) : 200;
      const payload = result && typeof result === 'object' && 'body' in result ? result.body : result;
      this.send(res, req, status, payload, size);
    } catch (error) {
      if (error instanceof HttpError) {
        this.send(res, req, error.status, { ErrorMessage: error.message, Errors: error.errors, FullException: null, HelpText: null, Details: null }, size);
      } else {
        this.send(res, req, 500, { ErrorMessage: `An unexpected error occurred: ${String(error)}`, Errors: [], FullException: String((error as Error)?.stack) }, size);
      }
    }
  }

  private send(res: http.ServerResponse, req: http.IncomingMessage, status: number, payload: unknown, bytes = 0): void {
    this.requests.push({ method: (req.method ?? 'GET').toUpperCase(), url: req.url ?? '/', status, bytes });
    const text = payload === undefined ? '' : JSON.stringify(payload);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'X-Octopus-Server-Simulator': 'octopus-dr',
    });
    res.end(text);
  }
}



// Stands in for @azure/identity in the step bundles (esbuild alias in scripts/build/bundle.ts).
// tedious constructs exactly two credential classes for the Entra forms we accept
// (Authentication=Active Directory Password / Service Principal) and calls getToken(scope) once per
// login. @azure/identity + MSAL would add ~180 KB (base64) to every database template, more than
// a third of it; the two OAuth 2.0 token requests they make here are one POST each to the
// Microsoft identity platform. Other credential types are not offered by our connection strings.

export interface AccessToken {
  token: string;
  expiresOnTimestamp: number;
}

const authorityHost = () => (process.env.AZURE_AUTHORITY_HOST || 'https://login.microsoftonline.com').replace(/\/+$/, '');

async function requestToken(tenantId: string, form: Record<string, string>): Promise<AccessToken> {
  const url = `${authorityHost()}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString(),
  });
  const body = (await response.json().catch(() => ({}))) as { access_token?: string; expires_in?: number | string; error?: string; error_description?: string };
  if (!response.ok || !body.access_token) {
    // error_description is Entra's own text (e.g. AADSTS7000215 invalid client secret); it never echoes the secret.
    const reason = body.error_description?.split('\r\n')[0] ?? body.error ?? `HTTP ${response.status}`;
    throw new Error(`Microsoft Entra ID did not issue a token: ${reason}`);
  }
  return { token: body.access_token, expiresOnTimestamp: Date.now() + Number(body.expires_in ?? 3600) * 1000 };
}

const scopeOf = (scopes: string | string[]) => (Array.isArray(scopes) ? scopes.join(' ') : scopes);

export class ClientSecretCredential {
  constructor(
    private readonly tenantId: string,
    private readonly clientId: string,
    private readonly clientSecret: string,
  ) {}

  getToken(scopes: string | string[]): Promise<AccessToken> {
    return requestToken(this.tenantId, { grant_type: 'client_credentials', client_id: this.clientId, client_secret: this.clientSecret, scope: scopeOf(scopes) });
  }
}

export class UsernamePasswordCredential {
  constructor(
    private readonly tenantId: string,
    private readonly clientId: string,
    private readonly userName: string,
    private readonly password: string,
  ) {}

  getToken(scopes: string | string[]): Promise<AccessToken> {
    return requestToken(this.tenantId, { grant_type: 'password', client_id: this.clientId, username: this.userName, password: this.password, scope: scopeOf(scopes) });
  }
}

class Unsupported {
  constructor() {
    throw new Error('This Microsoft Entra credential type is not available in octopus-dr; use Authentication=Active Directory Password or Active Directory Service Principal.');
  }
}

export const DefaultAzureCredential = Unsupported;
export const ManagedIdentityCredential = Unsupported;

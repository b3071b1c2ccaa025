// The Octopus Server URL a user gives, checked and normalised. Kept apart from connection.ts so
// that a step which only reads `GET /api` (the standby version check) can use it without
// bundling @octopusdeploy/api-client.

/** Checks and normalises a server URL: http(s), no query, no trailing slash. Returns a problem text or the URL. */
export function normaliseServerUrl(text: string): { url: string } | { problem: string } {
  const trimmed = text.trim();
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    return { problem: `"${trimmed}" is not a URL; give the Octopus Server's address, e.g. https://octopus.example.com` };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return { problem: `"${trimmed}" must start with https:// or http://` };
  if (parsed.username || parsed.password) return { problem: 'the server URL must not contain a user name or password; use an API key' };
  if (parsed.search || parsed.hash) return { problem: `"${trimmed}" must not contain a query or fragment` };
  // A trailing /api is accepted (the api-client strips it too); a virtual directory is kept.
  const path = parsed.pathname.replace(/\/+$/, '').replace(/\/api$/i, '');
  return { url: `${parsed.protocol}//${parsed.host}${path}` };
}

// A TCP endpoint as Check Worker takes it (`host:port`, `[ipv6]:port`): parsed here, without
// dependencies, so that the parameter's format (templates/formats.ts) refuses a bad one with exit 2
// before any endpoint is connected to, and the check connects to what the same parse returned.

export interface Endpoint {
  host: string;
  port: number;
}

/** Parses `host:port`, `[ipv6]:port`; returns an error text for anything else. */
export function parseEndpoint(text: string): Endpoint | string {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  const plain = /^([^:\s]+):(\d+)$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) {
    return `"${text}" is not host:port. Write e.g. sql01:1433, or [fd00::5]:443 for an IPv6 address.`;
  }
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return `"${text}" has port ${match[2]}; a port is from 1 to 65535.`;
  return { host: match[1], port };
}


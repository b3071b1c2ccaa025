// What a failed connection to an Octopus Server means, by Node's error code. Its own small module
// (no api-client), so steps that only read a standby's version stay small.
export const NETWORK_HINTS: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused: nothing listens on that host and port',
  ENOTFOUND: 'the host name does not resolve (DNS)',
  EAI_AGAIN: 'the host name could not be resolved right now (DNS)',
  ETIMEDOUT: 'the connection timed out (firewall, proxy or wrong port?)',
  ECONNRESET: 'the connection was reset (a proxy or load balancer in the way?)',
  EHOSTUNREACH: 'the host is unreachable from here',
  ENETUNREACH: 'the network is unreachable from here',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed; trust it by pointing NODE_EXTRA_CA_CERTS at the CA certificate (PEM)',
  SELF_SIGNED_CERT_IN_CHAIN: 'its TLS certificate chains to an untrusted root; set NODE_EXTRA_CA_CERTS to the CA certificate (PEM)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate cannot be verified; set NODE_EXTRA_CA_CERTS to the issuing CA certificate (PEM)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its TLS certificate issuer is not trusted here; set NODE_EXTRA_CA_CERTS to the CA certificate (PEM)',
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its TLS certificate is not valid for this host name; use the name the certificate was issued for',
};

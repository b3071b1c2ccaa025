declare const OCTOPUS_DR_VERSION: string | undefined;

/** Set by the build (esbuild `define`); "dev" when run from source. */
export const toolVersion: string = typeof OCTOPUS_DR_VERSION === 'string' ? OCTOPUS_DR_VERSION : 'dev';

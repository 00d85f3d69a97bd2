import pkg from '../package.json';

/** Reported in the birth message. */
export const AGENT_VERSION: string = pkg.version;

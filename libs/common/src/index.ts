export * from './config';
export * from './logger';
export * from './progress';
export * from './metrics';
export * from './timeout';
export * from './redact';
export * from './package-root';
export * from './charts/svg-chart';

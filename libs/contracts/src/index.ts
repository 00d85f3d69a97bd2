export * from './topics';
export * from './messages';
export * from './parse';
export * from './samples';
export * from './rollout';
export * from './rollout-signing';

export * from './topics';
export * from './messages';
export * from './parse';
export * from './samples';
export * from './model-artifact';
export * from './head-math';
export * from './training-rows';
export * from './artifact-archive';

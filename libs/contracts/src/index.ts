export * from './topics';
export * from './messages';
export * from './parse';
export * from './samples';
export * from './training-set';

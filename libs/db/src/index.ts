export * from './migrate';
export * from './embedded';
export * from './prisma';
export * from './consistency';
export * from './concurrency-check';

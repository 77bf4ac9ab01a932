import { type Container } from '@distill/core';

export * from './npy.js';

/** Binds this package's registry entries into the composition root's container. */
export function register(_container: Container): void {}

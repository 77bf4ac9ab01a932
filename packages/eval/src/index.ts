import { type Container } from '@distill/core';

/** Binds this package's registry entries into the composition root's container. */
export function register(_container: Container): void {}

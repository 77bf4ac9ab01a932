// Node module hook: resolve @distill/* workspace packages to their TypeScript sources.
export async function resolve(specifier, context, next) {
  const conditions = context.conditions.includes('@distill/source')
    ? context.conditions
    : [...context.conditions, '@distill/source'];
  return next(specifier, { ...context, conditions });
}

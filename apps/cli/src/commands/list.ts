import { DistillError, REGISTRY_KINDS, registryByKind, type RegistryKind } from '@distill/core';
import { STUDENT_SIZES } from '@distill/training';
import type { CliCommand } from '../command.js';

const KINDS = REGISTRY_KINDS.map((k) => k.kind);

/** `distill list [kind]`: every registered entry (built-ins and loaded plugins) with its description. */
export const listCommand: CliCommand = {
  command: 'list [kind]',
  describe: `List the registered ${KINDS.join(', ')} entries (with --plugin: a plugin's too)`,
  builder: (y) =>
    y.positional('kind', { type: 'string', describe: `one of ${KINDS.join(', ')} (default: all)` }).option('json', {
      type: 'boolean',
      default: false,
      describe: 'print one JSON object: {kind: [{name, description}]}',
    }),
  handler(args, ctx) {
    const kind = args.kind as string | undefined;
    if (kind !== undefined && !KINDS.includes(kind as RegistryKind)) {
      // plural forms are accepted (datasets, losses, students...)
      const singular = KINDS.find((k) => kind === `${k}s` || kind === `${k}es`);
      if (!singular) throw new DistillError(`Unknown kind '${kind}'. Available: ${KINDS.join(', ')}.`, 2);
      return listKinds([singular], args.json as boolean, ctx.container);
    }
    return listKinds(kind ? [kind as RegistryKind] : KINDS, args.json as boolean, ctx.container);
  },
};

function listKinds(kinds: RegistryKind[], json: boolean, container: Parameters<typeof registryByKind>[0]): void {
  const out: Record<string, { name: string; description: string }[]> = {};
  for (const k of kinds)
    out[k] = registryByKind(container, k)
      .list()
      .map((e) => ({ name: e.name, description: e.description }));
  if (json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  const lines: string[] = [];
  for (const k of kinds) {
    const info = REGISTRY_KINDS.find((r) => r.kind === k)!;
    if (lines.length) lines.push('');
    lines.push(`${info.what}:`);
    const width = Math.max(8, ...out[k].map((e) => e.name.length)) + 2;
    for (const e of out[k]) lines.push(`  ${e.name.padEnd(width)}${e.description}`);
    if (k === 'student') lines.push(`  (sizes, --size: ${STUDENT_SIZES.join(', ')})`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

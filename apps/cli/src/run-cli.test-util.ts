/** Test utility: `distill <argv>` run in this process, with process.stdout/stderr captured (and `env` set for the call). */
import { vi } from 'vitest';
import { runCli } from './main.js';

export async function distillInProcess(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const old = { ...process.env };
  Object.assign(process.env, env);
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  try {
    return { code: await runCli(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.env = old;
  }
}

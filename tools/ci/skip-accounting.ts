/**
 * Skip accounting (a vitest reporter, in vitest.config.ts): where a machine feature is required, a test
 * that skipped for want of it fails the run. Tests that need a feature skip without it and say why in
 * their name (`... (skipped: no WebGPU session)`, `describe.skipIf(...)`); a WebGPU probe that times out
 * under load takes the same road, so without this a loaded CI run could pass with the WebGPU tests
 * silently skipped. With DISTILL_REQUIRE_WEBGPU=1 (.ci/run sets it once lavapipe is installed) every
 * skipped test whose name (with its suites) mentions WebGPU, lavapipe or Vulkan is a failure; with
 * DISTILL_REQUIRE_BROWSER=1 every one that mentions Chromium or a browser. A run filtered by `-t` is not
 * accounted (vitest marks the tests it leaves out as skipped too).
 */
import type { Reporter, TestModule } from 'vitest/node';

export interface RequiredFeature {
  env: string;
  /** What a skipped test's full name mentions when it needs the feature. */
  pattern: RegExp;
}

export const REQUIRED_FEATURES: RequiredFeature[] = [
  { env: 'DISTILL_REQUIRE_WEBGPU', pattern: /webgpu|lavapipe|vulkan/i },
  { env: 'DISTILL_REQUIRE_BROWSER', pattern: /chromium|browser/i },
];

/** The skipped tests (full names) that need a feature the environment requires. */
export function requiredSkips(
  tests: { fullName: string; state: string }[],
  env: Record<string, string | undefined> = process.env,
): { test: string; env: string }[] {
  const required = REQUIRED_FEATURES.filter((f) => env[f.env] === '1');
  const out: { test: string; env: string }[] = [];
  for (const t of tests) {
    if (t.state !== 'skipped') continue;
    const f = required.find((r) => r.pattern.test(t.fullName));
    if (f) out.push({ test: t.fullName, env: f.env });
  }
  return out;
}

export default class SkipAccounting implements Reporter {
  private filter = false;

  onInit(ctx: { config: { testNamePattern?: RegExp } }): void {
    this.filter = !!ctx.config.testNamePattern;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    if (this.filter) return;
    const tests = testModules.flatMap((m) =>
      [...m.children.allTests()].map((t) => ({
        fullName: `${m.moduleId.replace(/^.*\/(packages|apps|tools)\//, '$1/')} > ${t.fullName}`,
        state: t.result().state,
      })),
    );
    const bad = requiredSkips(tests);
    if (bad.length === 0) return;
    console.error(`\nskip accounting: ${bad.length} test(s) skipped where their feature is required:`);
    for (const b of bad) console.error(`  ${b.env}=1 but skipped: ${b.test}`);
    process.exitCode = 1;
  }
}

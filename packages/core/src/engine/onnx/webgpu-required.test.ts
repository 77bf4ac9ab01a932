/**
 * The WebGPU tests skip on a machine without a usable Vulkan driver. Where one must be there (.ci/run
 * sets DISTILL_REQUIRE_WEBGPU=1 once .ci/lavapipe has installed Mesa >= 25), a session that does not
 * open is a failure here instead of a dozen silent skips elsewhere.
 */
import { describe, expect, it } from 'vitest';
import { webgpuReport } from './webgpu.js';

const required = process.env.DISTILL_REQUIRE_WEBGPU === '1';

describe('WebGPU where it is required', () => {
  it.runIf(required)(
    'DISTILL_REQUIRE_WEBGPU=1: a WebGPU session opens (so no WebGPU test skips)',
    async () => {
      const r = await webgpuReport({ timeoutMs: 60_000 });
      expect(r.session.ok, `no WebGPU session: ${r.session.error ?? 'unknown error'}`).toBe(true);
    },
    120_000,
  );
});

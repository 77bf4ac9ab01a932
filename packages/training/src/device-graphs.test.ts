import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findIcds, findLibvulkan, parseNodePlacements, probeWebGpuSession } from '@distill/core';

// The graphs the resident step runs besides the model (feature queue enqueue, dropout masks, AdamW)
// must run wholly on WebGPU: a node on the CPU provider would be a device -> host -> device round
// trip every step. onnxruntime's verbose "Node placements" (in a child process) say where each ran.
const hasVulkan = !!findLibvulkan() && findIcds().icds.length > 0;
const probe = hasVulkan ? await probeWebGpuSession() : undefined;

describe.skipIf(!probe?.ok)(
  `device graphs on WebGPU${probe?.ok ? '' : ' (skipped: no WebGPU session; lavapipe runs it on the CPU)'}`,
  () => {
    it('enqueue, dropout-mask and AdamW graphs: every node on WebGPU, no Memcpy', async () => {
      const child = spawn(
        process.execPath,
        [
          '--conditions=@distill/source',
          '--import',
          'tsx',
          fileURLToPath(new URL('./device-graphs-run.test-util.ts', import.meta.url)),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let log = '';
      child.stdout.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr.on('data', (d: Buffer) => (log += d.toString()));
      const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
      expect(code, log.slice(-2000)).toBe(0);
      const labels = [...log.matchAll(/^@@start (.*)$/gm)].map((m) => m[1]);
      expect(labels).toEqual(['enqueue', 'dropout masks', 'adamw']);
      const blocks = log
        .split(/^.*VerifyEachNodeIsAssignedToAnEp\] Node placements.*$/m)
        .slice(1)
        .map(parseNodePlacements);
      expect(blocks).toHaveLength(3);
      blocks.forEach((p, i) => expect(p, labels[i]).toEqual({ WebGpuExecutionProvider: [{ op: '*', node: '*' }] }));
    }, 120_000);
  },
);

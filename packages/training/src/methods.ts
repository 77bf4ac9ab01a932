import { DistillError, tf, type Balancer, type LossInputs } from '@distill/core';
import { FeatureQueue, type GraphFeed, type LossMethod } from '@distill/losses';
import type { LossHead } from '@distill/student-architectures';
import type { TrainConfig } from './config.js';
import { DeviceQueues } from './queue-graph.js';

type Tensors = Record<string, { shape: number[]; data: Float32Array }>;

/** Per-run mutable state of a method: its balancer and feature queues (all checkpointed). */
export interface MethodState {
  balancer: Balancer;
  queues?: { image: FeatureQueue; text: FeatureQueue };
  /** After the optimizer step: enqueue the batch's teacher features. */
  afterStep(teacherImage: Float32Array, teacherText: Float32Array, batch: number): void;
  save(): { balancer: unknown; queuePtr?: number; tensors: Tensors };
  load(balancer: unknown, tensors: Tensors, queuePtr?: number): void;
  dispose(): void;
  /**
   * Moves the feature queues onto the device of a resident step (WebGPU): from then on `afterStep`
   * records the enqueue for the device graph, the step feeds the device queues, and `save()` needs
   * their `flush()` first. Undefined when the method has no queues. Called once, by the step engine.
   */
  placeQueues(executionProviders: string[]): DeviceQueues | undefined;
  /** The device queues, once placed. */
  readonly deviceQueues?: DeviceQueues;
  /**
   * The method's losses as a head of the onnx engine's graph (every method has one: the same
   * definition as its tfjs form), and the per-step feeds of the inputs it declares (teacher rows,
   * queues, its own host-computed inputs such as same-group targets or DCD's teacher selection).
   */
  graph: { head: LossHead; feeds(x: GraphStepInputs): Record<string, GraphFeed> };
}

export interface GraphStepInputs {
  batch: number;
  teacherImage?: Float32Array;
  teacherText?: Float32Array;
  imageIds?: Int32Array;
}

export type { GraphFeed };

/** The trainer's view of `--losses`: a loss method from @distill/losses plus its balancer and queues. */
export interface Method {
  name: string;
  needsTeacher: boolean;
  balancerName: string;
  createState(dim: number, cfg: TrainConfig): MethodState;
  loss(inputs: LossInputs, state: MethodState): Record<string, tf.Scalar>;
}

/**
 * The trainer's Method over a loss method and a balancer already chosen by name in the registries
 * (`methodFor` does: built-ins, DSMD component lists and plugins alike; there is no other road).
 */
export function resolveMethod(
  cfg: TrainConfig,
  from: { method: LossMethod; balancer: (name: string) => Balancer },
): Method {
  const lm: LossMethod = from.method;
  const balancerName = cfg.balancer ?? lm.defaultBalancer;
  const chosenBalancer = from.balancer;
  const makeBalancer = (name: string): Balancer => {
    const made = chosenBalancer(name);
    // balancerOptions must reach the balancer (never dropped silently)
    const t = cfg.balancerOptions?.temperature;
    if (t !== undefined && (made as { cfg?: { temperature?: number } }).cfg?.temperature !== t) {
      throw new DistillError(
        `balancerOptions.temperature (${t}) does not apply to the '${name}' balancer: only dsmd-paper and dsmd-official have a temperature. Remove it or choose one of those.`,
        2,
      );
    }
    return made;
  };
  makeBalancer(balancerName); // fail fast on an unknown name
  return {
    name: lm.name,
    needsTeacher: lm.needsTeacher,
    balancerName,
    createState(dim, c) {
      const balancer = makeBalancer(balancerName);
      const queues = lm.needsQueue
        ? {
            image: new FeatureQueue(c.lossOptions.queueSize, dim, c.seed),
            text: new FeatureQueue(c.lossOptions.queueSize, dim, c.seed + 1),
          }
        : undefined;
      if (queues && c.lossOptions.queueSize < c.batchSize) {
        throw new DistillError(
          `Queue size ${c.lossOptions.queueSize} is smaller than the batch size ${c.batchSize}.`,
          2,
        );
      }
      const queueSize = queues?.image.size;
      const graph = {
        head: ((g, e) => lm.graph(g, e, { batch: e.image.shape[0], dim, queueSize })) satisfies LossHead,
        feeds: (x: GraphStepInputs): Record<string, GraphFeed> =>
          lm.feeds({ ...x, dim, imageQueue: queues?.image.rows, textQueue: queues?.text.rows }),
      };
      let onDevice: DeviceQueues | undefined;
      return {
        balancer,
        queues,
        graph,
        get deviceQueues() {
          return onDevice;
        },
        placeQueues(eps) {
          if (queues) onDevice ??= new DeviceQueues(queues, eps);
          return onDevice;
        },
        afterStep(ti, tt, b) {
          if (onDevice) return onDevice.enqueue(ti, tt, b);
          queues?.image.enqueue(ti, b);
          queues?.text.enqueue(tt, b);
        },
        save() {
          const tensors: Tensors = {};
          if (onDevice && !onDevice.hostCurrent)
            throw new Error(
              "MethodState.save(): the device holds newer feature queues; await the step engine's flush() first",
            );
          if (queues) {
            tensors['queue/image'] = { shape: [queues.image.size, dim], data: queues.image.state().data };
            tensors['queue/text'] = { shape: [queues.text.size, dim], data: queues.text.state().data };
          }
          return { balancer: balancer.state(), queuePtr: queues?.image.ptr, tensors };
        },
        load(b, tensors, ptr) {
          balancer.load(b);
          if (queues) {
            const qi = tensors['queue/image'];
            const qt = tensors['queue/text'];
            if (!qi || !qt)
              throw new DistillError(
                'The checkpoint has no feature queues, but this method needs them: was it written by another method?',
              );
            queues.image.load({ ptr: ptr ?? 0, data: qi.data });
            queues.text.load({ ptr: ptr ?? 0, data: qt.data });
            onDevice?.loaded();
          }
        },
        dispose() {
          queues?.image.dispose();
          queues?.text.dispose();
        },
      };
    },
    loss(inputs, state) {
      return lm.loss({ ...inputs, imageQueue: state.queues?.image.tensor, textQueue: state.queues?.text.tensor });
    },
  };
}

import {
  DistillError,
  registryOf,
  TOKENS,
  type Container,
  type Dataset,
  type Logger,
  type Teacher,
} from '@distill/core';
import { measureLatency } from '@distill/eval';
import {
  extractOrShard,
  extractTeacherFeatures,
  isPrecomputed,
  TEACHER_PRESETS,
  type ShardPending,
  type ShardSpec,
  type TeacherConfig,
  type TeacherFeatures,
  type TeacherSource,
} from '@distill/teacher-adapters';
import type { TrainConfig } from './config.js';
import { resolveDevice } from './engine.js';
import { SavedStudentTeacher } from './saved-student.js';

/** The embedded teachers' folders (they ship in @distill/teacher-adapters' assets/; re-exported from there). */
export { EMOJI_TEACHER_DIR, GLYPHS_TEACHER_DIR } from './registries.js';
/** The feature cache lives in @distill/teacher-adapters (feature-cache.ts); its root and result type are used by @distill/experiments. */
export { cacheRoot, type TeacherFeatures } from '@distill/teacher-adapters';

/** The config slice a teacher needs: its registry name, its folder, its batch size. */
export type TeacherSlice = TrainConfig['teacher'];

/**
 * The teacher named by `teacher.name`, chosen in the teacher registry (emoji, clip, beit3, features,
 * a saved student folder, or a plugin's teacher).
 */
export async function createTeacher(
  teacher: Pick<TeacherSlice, 'name' | 'model'>,
  opts: { executionProviders?: string[]; container: Container },
): Promise<TeacherSource> {
  const container = opts.container;
  const reg = registryOf<TeacherConfig, TeacherSource>(container, TOKENS.TeacherRegistry, 'teacher');
  const config: TeacherConfig = {
    model: teacher.model,
    ...(opts.executionProviders ? { executionProviders: opts.executionProviders } : {}),
  };
  if (!reg.accepts(teacher.name, config)) {
    throw new DistillError(
      `Unknown teacher '${teacher.name}'. Available: ${reg.names().join(', ')} (or any name with --teacher-model <a saved distill student folder>).`,
      2,
    );
  }
  return reg.create(teacher.name, config, { container });
}

/** Median ms per item at batch 1 of any teacher (through its Teacher interface, preprocessing excluded). */
export async function teacherLatency(t: Teacher): Promise<{ image: number; text: number }> {
  const { crop } = t.preprocess;
  const px = new Float32Array(3 * crop * crop).fill(0.1);
  const [img] = await measureLatency(() => t.encodeImages(px, 1).then(() => undefined), {
    batchSizes: [1],
    warmup: 3,
    iters: 15,
  });
  const [txt] = await measureLatency(() => t.encodeTexts(['a smiling face with heart eyes']).then(() => undefined), {
    batchSizes: [1],
    warmup: 3,
    iters: 15,
  });
  return { image: img.medianMs, text: txt.medianMs };
}

/**
 * The teacher the config names, chosen in the registry and run over every split on the training's
 * --device (ONNX teachers; the embedded emoji teacher and saved students run on tfjs), or its features
 * read from the cache (@distill/teacher-adapters' extractTeacherFeatures).
 */
export async function obtainTeacherFeatures(
  cfg: Pick<TrainConfig, 'teacher' | 'device'> & { dataset: Pick<TrainConfig['dataset'], 'skipBadImages'> },
  dataset: Dataset,
  log: Logger,
  container: Container,
): Promise<TeacherFeatures> {
  return (await obtainTeacher(cfg, dataset, log, container)).features;
}

/**
 * The teacher created once: its latency at batch 1 on the CPU first when asked (`latency`: a
 * teacher computing its features, not one reading them from a store; `timesSavedStudents`: a saved
 * distill student is left to the caller, who times its folder, `savedStudentDir`), then its
 * features (extraction, or the cache).
 */
export async function obtainTeacher(
  cfg: Pick<TrainConfig, 'teacher' | 'device'> & { dataset: Pick<TrainConfig['dataset'], 'skipBadImages'> },
  dataset: Dataset,
  log: Logger,
  container: Container,
  o: { latency?: boolean; timesSavedStudents?: boolean } = {},
): Promise<{ features: TeacherFeatures; latency?: { image: number; text: number }; savedStudentDir?: string }> {
  const device = cfg.teacher.name in TEACHER_PRESETS ? await resolveDevice(cfg.device, log.child('teacher')) : 'cpu';
  const source = await createTeacher(cfg.teacher, {
    executionProviders: device !== 'cpu' ? [device] : undefined,
    container,
  });
  let latency: { image: number; text: number } | undefined;
  const savedStudentDir = source instanceof SavedStudentTeacher ? source.dir : undefined;
  if (o.latency && !isPrecomputed(source) && !(o.timesSavedStudents && savedStudentDir)) {
    // the report's latency is the CPU's: a teacher placed on another device gets a CPU twin for it
    const onCpu = (device === 'cpu' ? source : await createTeacher(cfg.teacher, { container })) as Teacher;
    latency = await teacherLatency(onCpu);
    if (onCpu !== source) await onCpu.dispose?.();
  }
  const parameters = source instanceof SavedStudentTeacher ? source.student.parameterCount().total : undefined;
  const features = await extractTeacherFeatures(
    source,
    dataset,
    { batchSize: cfg.teacher.batchSize, skipBadImages: cfg.dataset.skipBadImages, device, parameters },
    log,
  );
  return { features, latency, savedStudentDir };
}

/**
 * One shard of the teacher's extraction (`distill teacher extract --shard i/N`) into the cache, or with
 * shard.merge only the merge: the features once every shard exists and verifies, else the shards missing.
 */
export async function obtainTeacherShard(
  cfg: Pick<TrainConfig, 'teacher' | 'device'> & { dataset: Pick<TrainConfig['dataset'], 'skipBadImages'> },
  dataset: Dataset,
  shard: ShardSpec,
  log: Logger,
  container: Container,
): Promise<TeacherFeatures | ShardPending> {
  const device = cfg.teacher.name in TEACHER_PRESETS ? await resolveDevice(cfg.device, log.child('teacher')) : 'cpu';
  const source = await createTeacher(cfg.teacher, {
    executionProviders: device !== 'cpu' ? [device] : undefined,
    container,
  });
  const parameters = source instanceof SavedStudentTeacher ? source.student.parameterCount().total : undefined;
  return extractOrShard(
    source,
    dataset,
    { batchSize: cfg.teacher.batchSize, skipBadImages: cfg.dataset.skipBadImages, device, parameters, shard },
    log,
  );
}

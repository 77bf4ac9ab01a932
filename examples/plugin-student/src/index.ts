/**
 * A distill plugin: a module exporting `register(container)`, like every distill package. It adds
 *   - the student pair `deit-textcnn` (a DeiT image tower + a TextCNN text tower: a pairing distill does
 *     not ship), in every size, and
 *   - the loss method `cosine-align`: the student's own contrastive loss plus a feature alignment to
 *     the teacher (1 - cosine of each student embedding with the teacher's, image and text), and
 *   - the dataset `emoji-mini`: the embedded emoji benchmark cut to its first 48 images per split (a
 *     dataset built from another registry entry), usable wherever a dataset is named.
 * Load it with `--plugin <this folder>` (or the package name once installed):
 *
 *   npx distill train --plugin examples/plugin-student --student deit-textcnn --losses cosine-align
 */
import {
  DistillError,
  registryOf,
  TOKENS,
  type Container,
  type Dataset,
  type Ops,
  type SplitData,
} from '@distill/core';
import {
  contrastiveLossOps,
  defineLossMethod,
  groupTargetArray,
  type LossMethod,
  type LossMethodOptions,
} from '@distill/losses';
import {
  createStudentFromConfig,
  resolveStudentConfig,
  type DualEncoderStudent,
  type StudentRegistryConfig,
} from '@distill/student-architectures';

/** deit-textcnn: the DeiT tower of `deit-albert` and the TextCNN tower of `vit-textcnn`, at the same size preset. */
export function createDeitTextCnn(cfg: StudentRegistryConfig): DualEncoderStudent {
  if (cfg.imageInit || cfg.textInit)
    throw new DistillError(
      "The 'deit-textcnn' plugin student starts from random weights: drop --image-init/--text-init.",
      2,
    );
  const common = { preset: cfg.preset, embedDim: cfg.embedDim, maxLength: cfg.maxLength, vocabSize: cfg.vocabSize };
  const tokenizer =
    typeof cfg.tokenizer === 'object' && cfg.tokenizer && 'vocabSize' in cfg.tokenizer
      ? (cfg.tokenizer.vocabSize as number)
      : undefined;
  const image = resolveStudentConfig('deit-albert', { ...common, overrides: { image: cfg.overrides?.image } });
  const text = resolveStudentConfig('vit-textcnn', {
    ...common,
    tokenizerVocabSize: tokenizer,
    overrides: { text: cfg.overrides?.text },
  });
  return createStudentFromConfig(
    { ...image, pair: 'deit-textcnn', text: text.text },
    { seed: cfg.seed, tokenizer: cfg.tokenizer },
  );
}

/** 1 - mean over rows of cos(s_i, t_i) (the embeddings are L2-normalised, so cos is a row dot product). */
function cosineGap<T>(o: Ops<T>, s: T, t: T): T {
  const cos = o.reduceMean(o.reduceSum(o.mul(s, t), [1]), [0]);
  return o.sub(o.scalar(cos, 1), cos);
}

/** cosine-align: components `contrastive` (the student's own InfoNCE, same-group targets) and `align` (the cosine gap to the teacher). */
export function cosineAlign(cfg: LossMethodOptions): LossMethod {
  return defineLossMethod({
    name: 'cosine-align',
    description: "plugin example: the student's contrastive loss + 1 - cos(student, teacher) per modality",
    needsTeacher: true,
    needsQueue: false,
    defaultBalancer: 'static',
    components: ['contrastive', 'align'],
    extraInputs: (s) => [{ name: 'targets', shape: [s.batch, s.batch], dtype: 'float32' }],
    extraValues: (x) => ({
      targets: { data: groupTargetArray(x.imageIds, x.batch), dims: [x.batch, x.batch], dtype: 'float32' },
    }),
    build: (o, x) => ({
      contrastive: contrastiveLossOps(o, x.studentImage, x.studentText, cfg.temperature, x.extra.targets),
      align: o.add(cosineGap(o, x.studentImage, x.teacherImage!), cosineGap(o, x.studentText, x.teacherText!)),
    }),
  });
}

/** The first `n` images of a split and the captions of those images. */
function firstImages(s: SplitData, n: number): SplitData {
  return { images: s.images.slice(0, n), captions: s.captions.filter((c) => c.image < n) };
}

/** Adds the plugin's entries to the student, loss and dataset registries (a second call is a no-op). */
export function register(container: Container): void {
  const students = registryOf<StudentRegistryConfig, DualEncoderStudent>(container, TOKENS.StudentRegistry, 'student');
  if (!students.has('deit-textcnn')) {
    students.add({
      name: 'deit-textcnn',
      description: 'plugin example: DeiT image tower (CLS + distillation token) + TextCNN text tower',
      defaults: { preset: 'tiny', embedDim: 768, seed: 0, maxLength: 30 },
      create: createDeitTextCnn,
    });
  }
  const losses = registryOf<LossMethodOptions, LossMethod>(container, TOKENS.LossRegistry, 'loss');
  if (!losses.has('cosine-align'))
    losses.add({
      name: 'cosine-align',
      description: "plugin example: the student's contrastive loss + 1 - cos(student, teacher) per modality",
      defaults: { temperature: 0.05 },
      create: cosineAlign,
    });
  const datasets = registryOf<Record<string, unknown>, Dataset>(container, TOKENS.DatasetRegistry, 'dataset');
  if (!datasets.has('emoji-mini')) {
    datasets.add({
      name: 'emoji-mini',
      description: 'plugin example: the embedded emoji benchmark, its first 48 images per split',
      create: async (cfg, ctx) => {
        const emoji = await datasets.create('emoji', cfg, ctx);
        const splits = Object.fromEntries(Object.entries(emoji.splits).map(([k, v]) => [k, firstImages(v, 48)]));
        return { ...emoji, name: 'emoji-mini', manifestHash: `${emoji.manifestHash}:first-48`, splits };
      },
    });
  }
}

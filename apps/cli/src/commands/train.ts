import type { CliCommand } from '../command.js';

/** Placeholder until the training package lands (issue: training end to end). */
export const trainCommand: CliCommand = {
  command: 'train',
  describe: 'Distil a teacher into a student (not available yet)',
  builder: (y) =>
    y
      .option('teacher', { type: 'string', describe: 'teacher name (beit3, clip, features, ...)' })
      .option('student', { type: 'string', describe: 'student pair (vit-bert, deit-albert, ...)' })
      .strict(false),
  handler(args) {
    process.stderr.write(
      `distill train is not available yet (teacher=${String(args.teacher ?? 'default')}, student=${String(args.student ?? 'default')}).\n`,
    );
    return 2;
  },
};

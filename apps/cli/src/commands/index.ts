import type { CliCommand } from '../command.js';
import { dataCommands } from './data.js';
import { doctorCommand } from './doctor.js';
import { evalCommands } from './eval.js';
import { lossCommands } from './losses.js';
import { studentCommands } from './students.js';
import { teacherCommands } from './teacher.js';
import { pretrainCommand } from './pretrain.js';
import { trainCommand } from './train.js';
import { listCommand } from './list.js';
import { exportCommand } from './export.js';
import { indexCommands } from './index-cmd.js';
import { searchCommand } from './search.js';
import { serveCommand } from './serve.js';
import { siteCommand } from './site.js';
import { experimentCommand } from './experiment.js';

/** Every command module of the CLI. Add one line per file in this folder. */
export const commandModules: CliCommand[][] = [
  [doctorCommand],
  [listCommand],
  [trainCommand],
  [pretrainCommand],
  evalCommands,
  dataCommands,
  studentCommands,
  lossCommands,
  teacherCommands,
  [exportCommand],
  indexCommands,
  [searchCommand],
  [serveCommand],
  [siteCommand],
  [experimentCommand],
];

/**
 * The `ssl-inv` command line: one file per subcommand, registered here. Results go to files and a
 * short table on stdout; progress and errors go to stderr. Exit codes: 0 success, 1 error, 2 usage,
 * 128 + the signal's number when interrupted (130 for Ctrl-C, 143 for SIGTERM).
 */
import { Command, CommanderError } from 'commander';
import { removePendingTempFiles } from '../io/atomic-write';
import { reportError } from './common';
import { PROGRESS_MODES, emitEvent, isProgressMode, jsonOutput, parseProgressMode, setProgressMode } from './stderr-output';
import { demoCommand } from './demo';
import { evalCausal3DIdentCommand } from './eval-causal3dident';
import { evalDownstreamCommand } from './eval-downstream';
import { evalRealworldCommand } from './eval-realworld';
import { evalSyntheticCommand } from './eval-synthetic';
import { featuresCommand } from './features';
import { infoCommand, packageVersion } from './info';
import { pretrainCommand } from './pretrain';
import { probeCommand } from './probe';
import { reportCommand } from './report';
import { selftestCommand } from './selftest';
import { viewsCommand } from './views';

export function buildProgram(): Command {
  const program = new Command('ssl-inv')
    .description('How invariant are self-supervised ResNet features, and how well do they transfer?')
    .version(packageVersion())
    .option('--progress <mode>', `progress and notices on stderr: ${PROGRESS_MODES.join(', ')} (auto: a bar on a terminal, lines elsewhere; ` +
      'json: one JSON object per line; env SSL_INV_PROGRESS)', (v) => parseProgressMode(v, '--progress'))
    .showHelpAfterError()
    .exitOverride();
  // Before any subcommand runs (the flag may come before or after the subcommand's name).
  program.hook('preAction', (root) => setProgressMode(root.opts<{ progress?: ReturnType<typeof parseProgressMode> }>().progress));
  program.addCommand(demoCommand());
  program.addCommand(evalSyntheticCommand());
  program.addCommand(evalRealworldCommand());
  program.addCommand(evalDownstreamCommand());
  program.addCommand(evalCausal3DIdentCommand());
  program.addCommand(pretrainCommand());
  program.addCommand(probeCommand());
  program.addCommand(featuresCommand());
  program.addCommand(infoCommand());
  program.addCommand(reportCommand());
  program.addCommand(viewsCommand());
  program.addCommand(selftestCommand());
  // Commander's own usage errors (unknown options, bad option values) carry the same code as ours.
  const output = {
    outputError: (message: string, write: (s: string) => void) => {
      const text = message.replace(/^error: /, '');
      if (jsonOutput()) emitEvent('error', { code: 'ERR_USAGE', message: text.trimEnd() }, { write });
      else write(`ssl-inv: error ERR_USAGE: ${text}`);
    },
  };
  program.configureOutput(output);
  for (const cmd of program.commands) cmd.exitOverride().configureOutput(output);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  setProgressMode(undefined);
  // The mode is known before parsing, so that even a usage error comes out in it.
  const flagAt = argv.findIndex((a) => a === '--progress' || a.startsWith('--progress='));
  const early = flagAt < 0 ? undefined : argv[flagAt]!.includes('=') ? argv[flagAt]!.slice('--progress='.length) : argv[flagAt + 1];
  const env = process.env.SSL_INV_PROGRESS;
  try {
    if (isProgressMode(early)) setProgressMode(early);
    if (env !== undefined && env !== '') parseProgressMode(env, 'SSL_INV_PROGRESS');
  } catch (e) {
    return reportError(e);
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with exit code 0; bad flags with commander's message already shown.
      return e.exitCode === 0 ? 0 : 2;
    }
    return reportError(e);
  }
}

/**
 * For the ssl-inv executable (not for main(), which tests run in-process): on SIGINT or SIGTERM,
 * remove the unfinished files of this process (an atomic write's temp file: a checkpoint being
 * saved, a features .npy being filled), say so, and exit with 128 + the signal's number. Files
 * already renamed into place and the previous versions of those being written are untouched, so an
 * interrupted pretrain resumes from its last whole checkpoint.
 */
export function installInterruptCleanup(): void {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      const removed = removePendingTempFiles();
      if (jsonOutput()) emitEvent('interrupted', { signal, removed });
      else process.stderr.write(`\nssl-inv: interrupted (${signal})${removed.length ? `; removed ${removed.length} unfinished file(s): ${removed.join(', ')}` : ''}\n`);
      process.exit(code);
    });
  }
}

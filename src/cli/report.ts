/** `ssl-inv report RESULTS_DIR [--out FILE]`: the HTML report of a results folder (see src/report/html.ts). */
import { Command } from 'commander';
import { writeReport } from '../report/html';

export function reportCommand(): Command {
  return new Command('report')
    .description('write a self-contained HTML report (heatmap and plots) of the invariance results in a folder')
    .argument('<results-dir>', 'folder with *_invariance.json files')
    .option('--out <file>', 'output HTML file (default RESULTS_DIR/report.html)')
    .action(async (dir: string, f: { out?: string }) => {
      const r = await writeReport(dir, f.out);
      process.stdout.write(`report of ${r.results} result file(s) -> ${r.file}\n`);
    });
}

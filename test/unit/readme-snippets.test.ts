// The README's TypeScript examples type-check against the package as it is: each ```ts block is
// compiled (strict, as the package) with 'ssl-invariances' mapped to src/index.ts, so a renamed
// export, a changed signature or a wrong option in the documentation fails here instead of in a
// user's editor. Names a block uses without defining (its data, e.g. viewsQ) are declared with the
// types the prose gives them, in DECLARED below.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.join(__dirname, '..', '..');

/** The README's free names and what the surrounding text says they are. */
const DECLARED = 'declare const viewsQ: Float32Array;\ndeclare const viewsK: Float32Array;\n';

function snippets(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

t.test('every ```ts block of the README compiles', async (t) => {
  const blocks = snippets();
  t.ok(blocks.length >= 2, `${blocks.length} blocks`);
  const dir = path.join(ROOT, 'test', 'unit');
  const files = blocks.map((code, i) => ({
    name: path.join(dir, `__readme_snippet_${i}.ts`),
    // A module of its own (top-level await needs one), importing the package from source.
    text: `${DECLARED}${code.replace(/from 'ssl-invariances'/g, "from '../../src/index'")}\nexport {};\n`,
  }));
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts'], types: ['node'], strict: true, noEmit: true, skipLibCheck: true, esModuleInterop: true,
  };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  // The snippets exist only in memory.
  host.readFile = (f) => files.find((s) => s.name === f)?.text ?? read(f);
  host.fileExists = (f) => files.some((s) => s.name === f) || exists(f);
  const program = ts.createProgram(files.map((f) => f.name), options, host);
  for (const [i, f] of files.entries()) {
    const diags = [...program.getSyntacticDiagnostics(program.getSourceFile(f.name)), ...program.getSemanticDiagnostics(program.getSourceFile(f.name))];
    const text = diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    t.same(text, [], `block ${i + 1} (${blocks[i]!.split('\n')[0]})`);
  }
});

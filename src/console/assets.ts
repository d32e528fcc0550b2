/**
 * The console's browser code, as JavaScript modules for `/console/assets/<name>.js`.
 *
 * The compiled engine (`npm run build`, docker/Dockerfile) serves what the build compiled from
 * src/console/web/ into `dist/console/web/` beside this module. Run from the TypeScript sources
 * (`npm start`, the tests: tsx), there is no compiled copy beside this module: each source is
 * transpiled on first use with the TypeScript compiler (a development dependency, present
 * wherever the sources run) and kept in memory. Either way only the modules of that folder are
 * served, by name.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The folder of the browser code beside this module (src/console/web or dist/console/web). */
const WEB_DIR = fileURLToPath(new URL('./web/', import.meta.url));

/** The browser modules, by name (without extension). */
export class ConsoleScripts {
  private readonly compiled: boolean;
  private readonly names: ReadonlySet<string>;
  private readonly cache = new Map<string, Promise<string>>();

  /** @param dir the folder of the browser code (default: `web/` beside this module) */
  constructor(private readonly dir: string = WEB_DIR) {
    const files = existsSync(dir) ? readdirSync(dir) : [];
    this.compiled = files.some((f) => f.endsWith('.js'));
    const ext = this.compiled ? '.js' : '.ts';
    this.names = new Set(
      files.filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts')).map((f) => f.slice(0, -3)),
    );
  }

  /** True when `name` is one of the modules (e.g. `console`). */
  has(name: string): boolean {
    return this.names.has(name);
  }

  /**
   * The JavaScript of module `name`.
   *
   * @throws RangeError for a name that is not a module of the folder
   * @throws Error when the file cannot be read (or, from sources, transpiled)
   */
  script(name: string): Promise<string> {
    if (!this.has(name)) throw new RangeError(`no console module ${name}`);
    let text = this.cache.get(name);
    if (!text) {
      text = this.compiled
        ? readFile(join(this.dir, `${name}.js`), 'utf8')
        : this.transpile(join(this.dir, `${name}.ts`));
      text.catch(() => this.cache.delete(name));
      this.cache.set(name, text);
    }
    return text;
  }

  private async transpile(file: string): Promise<string> {
    const source = await readFile(file, 'utf8');
    const ts = (await import('typescript')).default;
    const out = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ES2022,
        rewriteRelativeImportExtensions: true,
        verbatimModuleSyntax: true,
      },
    });
    return out.outputText;
  }
}

export declare const WASM_FILES: readonly string[];

export interface BundleForBrowserOptions {
  /** Entry module (TypeScript or JavaScript). */
  entry: string;
  /** Output file; `wasm/` is created beside it. */
  outfile: string;
  /** Minify the bundle. Default false (readable stack traces in tests). */
  minify?: boolean;
  /** Write a linked source map beside the bundle. Default true. */
  sourcemap?: boolean;
  /** Extra package export conditions, e.g. `['@flotilla/source']` to bundle from the sources. */
  conditions?: string[];
}

export declare function bundleForBrowser(options: BundleForBrowserOptions): Promise<void>;

/** The built console (index.html, assets/ and a .gz beside each file); absent until `pnpm build`. */
export declare const distDir: string;

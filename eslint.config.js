// ESLint for Tern: typescript-eslint's type-checked recommended rules on src/, test/ and bench/ (and on the browser
// portal, src/web, with its own tsconfig), the core recommended rules on the plain JavaScript scripts, and
// eslint-config-prettier last so formatting is left to Prettier.
// A promise dropped in a server that promises durability is a bug, so the promise rules are errors everywhere.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'bench/out/', 'data/', 'test-artifacts/'] },
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    ignores: ['src/web/**'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's describe() and it() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // An async function without await is how a synchronous call (better-sqlite3) meets an async interface, and it
      // turns a throw into a rejection; dropping `async` to please this rule would change behaviour.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests and benchmarks pass store methods around as plain functions (they are closures, not `this`-bound).
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/unbound-method': 'off' },
  },
  {
    // The admin portal runs in the browser and has its own tsconfig (DOM, JSX for Preact).
    files: ['src/web/**/*.{ts,tsx}'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      globals: globals.browser,
      parserOptions: { project: './src/web/tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  prettier,
);

// ESLint flat config: typescript-eslint type-checked rules plus the seams of ARCHITECTURE.md
// (process.exit only in the host and the worker entries; cluster / child_process /
// worker_threads only in launcher/ and the worker entries).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // TypeScript only: fixtures, example apps and the bench scripts are plain JS on purpose
  { ignores: ['lib/**', '**/node_modules/**', 'test/fixtures/**', 'test/compat/*-app/**', 'example/**', 'coverage/**', '.compat/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-restricted-syntax': ['error', {
        selector: "ImportDeclaration[source.value=/^(assert|buffer|child_process|cluster|crypto|dns|events|fs|http|https|net|os|path|stream|timers|tls|url|util|v8|worker_threads|zlib)(\\/.*)?$/]",
        message: 'Use the node: prefix for builtins.',
      }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/host/process_host.ts', 'src/agent_worker.ts', 'src/app_worker.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'exit', message: 'Only host/process_host.ts and the worker entries may exit.' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/launcher/**', 'src/agent_worker.ts', 'src/app_worker.ts', 'src/worker/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [
        { name: 'node:cluster', message: 'Only launcher/* may use node:cluster.' },
        { name: 'node:child_process', message: 'Only launcher/* may fork.' },
        { name: 'node:worker_threads', message: 'Only launcher/* and the worker side may use threads.' },
      ] }],
    },
  },
);

import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'data/**',
      '.scratch/**',
      'dist/**',
      '.build-test-*/**',
      // Deliberate mistakes: test/lint/lint.test.ts checks that each is reported.
      'test/lint/unhandled-promises.fixture.ts',
    ],
  },
  js.configs.recommended,
  // Type-aware rules (they read the TypeScript program of tsconfig.json, which covers src, test
  // and bench): above all no-floating-promises, no-misused-promises and await-thenable, since a
  // promise nobody handles is an async call engine's most common bug (a failed ARI command that
  // leaves a call half set up, an event listener whose rejection nobody sees).
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      // The promise rules, spelled out (recommendedTypeChecked has them too). `void promise` is
      // let through: it marks a promise that never rejects (its failures are caught and logged
      // inside, like the call steps of CallService.run).
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `try { return promise; } catch` does not catch the promise's rejection: awaited there.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // Off: churn without catching bugs. `async` without `await` is how an implementation of a
      // promise-returning interface (a fake, a store method) turns its throws into rejections;
      // dropping `async` would change that.
      '@typescript-eslint/require-await': 'off',
      // Off: churn without catching bugs. It flags String(x) of values typed as objects, which
      // here are deliberate (ARI's comma-separated list parameters, sinon call arguments, test
      // request bodies); none of its findings in this code was a wrong message.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    // Plain JavaScript (this config, the SQLite worker threads) is not in tsconfig.json's
    // program: linted without type information (none of these files uses promises today).
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);

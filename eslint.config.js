import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'packages/doctor/dist/**', 'node_modules/**', '.tap/**', 'coverage/**', '.e2e/**', '.kube/**', '.smoke/**'] }),
  {
    rules: {
      // `void promise` marks a promise deliberately left to run (a background task); allow it as a statement.
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]

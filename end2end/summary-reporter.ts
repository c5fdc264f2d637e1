// Prints the run's counts once more as one plain line, "e2e: N passed, N failed,
// N skipped", after the 'list' reporter's own summary. That plain form is what CI reads
// from the end of `scripts/test`; Playwright's "N passed (3.1s)" is not.
import type { FullResult, Reporter, Suite } from '@playwright/test/reporter';

export default class SummaryReporter implements Reporter {
  private suite?: Suite;

  printsToStdio(): boolean {
    return true;
  }

  onBegin(_config: unknown, suite: Suite): void {
    this.suite = suite;
  }

  onEnd(result: FullResult): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    let notRun = 0;
    for (const test of this.suite?.allTests() ?? []) {
      if (test.results.length === 0 && test.expectedStatus !== 'skipped') {
        notRun++;
        continue;
      }
      switch (test.outcome()) {
        case 'expected':
        case 'flaky':
          passed++;
          break;
        case 'unexpected':
          failed++;
          break;
        case 'skipped':
          skipped++;
          break;
      }
    }
    // Tests that never ran because the run broke off (server did not start, ctrl-c, a
    // failure with maxFailures) count as failed; so does a broken run with no tests.
    if (result.status !== 'passed') failed += Math.max(notRun, failed === 0 ? 1 : 0);
    else skipped += notRun;
    process.stdout.write(`e2e: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}

/** sysexits.h EX_TEMPFAIL: the child job stopped early on request; the work can be retried. */
export const EXIT_INTERRUPTED = 75
/** The service refused its environment (a bad PORT, DRAIN_DELAY_MS...). */
export const EXIT_BAD_CONFIG = 2

// Reporting errors thrown by user callbacks without letting them reach (and restart) the code that called them.

/** Reports `error` as an uncaught error would be (`window.onerror`, the console), but does not throw. */
export function reportError(error: unknown): void {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(error)
  else console.error(error)
}

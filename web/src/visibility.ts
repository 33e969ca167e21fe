// Tab visibility as a React external store, for pausing streams while the tab is hidden.

export function subscribeVisibility(onChange: () => void): () => void {
  document.addEventListener('visibilitychange', onChange)
  return () => document.removeEventListener('visibilitychange', onChange)
}

export const isHidden = (): boolean => document.visibilityState === 'hidden'

/** The server snapshot: a page being rendered on the server is never hidden. */
export const neverHidden = (): boolean => false

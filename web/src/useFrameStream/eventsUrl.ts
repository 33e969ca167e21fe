// Building the `/events` request URL from what a hook or a provider's group asks for.

/** What goes into the `/events` query string. */
export interface EventsQuery {
  /** Stream names, each a repeated `stream` parameter; none means the server's `default`. */
  streams: readonly string[]
  /** `'none'` leaves the JPEG out of every frame. */
  payload?: 'jpeg' | 'none' | undefined
  /** Server-side cap on frames per second (fractions allowed). */
  fps?: number | undefined
  /** Wanted frame width; the server rounds it to a size it offers, once it supports it. */
  width?: number | undefined
}

/** The name of the stream the server picks when a request names none. */
export const DefaultStreamName = 'default'

/** The server's rule for stream names. */
const StreamNamePattern = /^[A-Za-z0-9_-]{1,64}$/

export function isStreamName(name: string): boolean {
  return StreamNamePattern.test(name)
}

/** The `/events` URL for `query`, resolved against the page; parameters already in `url` are kept. */
export function eventsUrl(url: string, query: EventsQuery): string {
  const target = new URL(url, globalThis.location?.href)
  if (query.streams.length > 0) {
    target.searchParams.delete('stream')
    for (const stream of query.streams) target.searchParams.append('stream', stream)
  }
  if (query.payload === 'none') target.searchParams.set('payload', 'none')
  if (query.fps !== undefined) target.searchParams.set('fps', String(query.fps))
  if (query.width !== undefined) target.searchParams.set('width', String(query.width))
  return target.toString()
}

// The options that shape a connection rather than what it carries, turned into what openConnection needs:
// shared by the hook (its own connection) and the provider (one connection for many hooks).

import {
  AuthRetries,
  DefaultBackoff,
  DefaultConnectTimeoutMs,
  DefaultStallTimeoutMs,
  type BackoffOptions,
  type ConnectionOptions,
  type HeaderRecord,
} from './connection'

/** Connection-level options, as `useFrameStream` and `<FrameStreamProvider>` take them. */
export interface ConnectionSettings {
  headers?: HeaderRecord | undefined
  getHeaders?: (() => HeaderRecord | Promise<HeaderRecord>) | undefined
  backoff?: BackoffOptions | undefined
  connectTimeoutMs?: number | undefined
  stallTimeoutMs?: number | undefined
  fetch?: typeof fetch | undefined
}

/**
 * Everything but the URL, from the latest settings: read when a connection opens, except the
 * headers, which are read again before every attempt so a refreshed token goes out.
 */
export function connectionOptions(latest: { readonly current: ConnectionSettings }): Omit<ConnectionOptions, 'url'> {
  const settings = latest.current
  return {
    headers: async () => ({
      ...latest.current.headers,
      ...(await latest.current.getHeaders?.()),
    }),
    // Static headers would only be refused again.
    authRetries: settings.getHeaders ? AuthRetries : 0,
    fetch: settings.fetch,
    backoff: {
      initialMs: settings.backoff?.initialMs ?? DefaultBackoff.initialMs,
      maxMs: settings.backoff?.maxMs ?? DefaultBackoff.maxMs,
    },
    connectTimeoutMs: settings.connectTimeoutMs ?? DefaultConnectTimeoutMs,
    stallTimeoutMs: settings.stallTimeoutMs ?? DefaultStallTimeoutMs,
  }
}

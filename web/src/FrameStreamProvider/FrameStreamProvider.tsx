// <FrameStreamProvider>: one framecast connection for every useFrameStream and <FrameCanvas> under it.

import { useEffect, useLayoutEffect, useMemo, useRef, useSyncExternalStore, type ReactNode } from 'react'

import { connectionOptions } from '../useFrameStream/connectionOptions'
import type { UseFrameStreamOptions } from '../useFrameStream/useFrameStream'
import { isHidden, neverHidden, subscribeVisibility } from '../visibility'
import { StreamHubContext } from './context'
import { createStreamHub, DefaultMaxStreamsPerConnection } from './streamHub'

export interface FrameStreamProviderProps
  extends Pick<
    UseFrameStreamOptions,
    'url' | 'enabled' | 'headers' | 'getHeaders' | 'pauseWhenHidden' | 'backoff' | 'connectTimeoutMs' | 'stallTimeoutMs' | 'fetch'
  > {
  /**
   * Most streams one connection carries; more open another connection. framecast's
   * `--max-streams-per-connection`, 64 by default.
   */
  maxStreamsPerConnection?: number | undefined
  children?: ReactNode
}

/**
 * Shares connections among the hooks below it: it collects the streams that mounted `useFrameStream`
 * hooks ask for and opens one `/events?stream=a&stream=b…` request for all of them, instead of one
 * per hook. Mounting or unmounting hooks re-subscribes (a new request with the new set of streams),
 * batched so that a page mounting sixteen tiles opens one request; the other streams keep their last
 * picture meanwhile. Each hook still gets its own frames, state and counters.
 *
 * `fps`, `payload` and `width` apply to a whole connection, so hooks are grouped by them: each
 * distinct combination gets its own connection (usually there is one). The connection options of the
 * hooks below (url, headers, getHeaders, pauseWhenHidden, backoff, timeouts, fetch) are ignored;
 * the provider's apply. A hook's `reconnect()` reopens the connection its stream is on, for every
 * stream on it.
 *
 * @example
 * ```tsx
 * <FrameStreamProvider url="https://cams.example.com/events" getHeaders={() => ({ Authorization: `Bearer ${getToken()}` })}>
 *   {names.map(name => <Camera key={name} stream={name} />)}
 * </FrameStreamProvider>
 * ```
 */
export function FrameStreamProvider(props: FrameStreamProviderProps) {
  const { url = '/events', enabled = true, pauseWhenHidden = true, children } = props

  // Latest props, read when a connection opens (and the headers at every attempt), so callers need not memoize them.
  const latest = useRef(props)
  useLayoutEffect(() => {
    latest.current = props
  })

  // A new URL is a new hub: the hooks below re-subscribe to it, and the old one closes with the effect below.
  const hub = useMemo(
    () =>
      createStreamHub({
        url,
        settings: () => ({
          ...connectionOptions(latest),
          maxStreamsPerConnection: latest.current.maxStreamsPerConnection ?? DefaultMaxStreamsPerConnection,
        }),
      }),
    [url],
  )

  const hidden = useSyncExternalStore(subscribeVisibility, isHidden, neverHidden)
  const live = enabled && !(pauseWhenHidden && hidden)
  useEffect(() => {
    hub.setActive(live)
    return () => hub.setActive(false)
  }, [hub, live])

  return <StreamHubContext.Provider value={hub}>{children}</StreamHubContext.Provider>
}

// The React hook over one framecast stream: its own connection per effect run (or a subscription to the
// provider's shared one), pausing on hidden tabs, counters kept in refs and published to React a few times a
// second (never per frame).

import { useCallback, useContext, useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from 'react'

import type { Frame, SourceState } from '../frame'
import { StreamHubContext } from '../FrameStreamProvider/context'
import type { StreamHub, StreamRequest, StreamSink } from '../FrameStreamProvider/streamHub'
import { reportError } from '../reportError'
import { isHidden, neverHidden, subscribeVisibility } from '../visibility'
import {
  openConnection,
  type BackoffOptions,
  type ConnectionStatus,
  type FrameStreamError,
  type HeaderRecord,
} from './connection'
import { connectionOptions } from './connectionOptions'
import { DefaultStreamName, eventsUrl } from './eventsUrl'
import { createFrameSlot, type FrameFeed, type FrameSlot } from './frameFeed'

/** How often counters reach React by default: 4 Hz is smooth enough for numbers and cheap. */
export const DefaultStatsIntervalMs = 250

/** The window over which `fps` is measured. */
const FpsWindowMs = 1_000

/**
 * Under a `<FrameStreamProvider>`, the connection options (`url`, `headers`, `getHeaders`,
 * `pauseWhenHidden`, `backoff`, `connectTimeoutMs`, `stallTimeoutMs`, `fetch`) are the provider's and
 * these are ignored; `stream`, `enabled`, `fps`, `payload`, `width`, `statsIntervalMs` and `onFrame`
 * stay the hook's.
 */
export interface UseFrameStreamOptions {
  /** URL of framecast's `/events` endpoint, absolute or relative to the page. Default `/events`. */
  url?: string | undefined
  /** Stream name (`[A-Za-z0-9_-]{1,64}`); the server's `default` when absent. */
  stream?: string | undefined
  /** Connect only while true. Default true. */
  enabled?: boolean | undefined
  /** Extra request headers; read on every (re)connect, so changing them does not reconnect by itself. */
  headers?: HeaderRecord | undefined
  /**
   * Called before every connect and reconnect; its headers are added after `headers`. Use it for a
   * token that expires: `getHeaders: () => ({ Authorization: `Bearer ${auth.token()}` })`. May be async.
   *
   * When the token expires, the server ends the stream and the hook reconnects at once, calling this
   * for the new token; status is `reconnecting` for that moment and the last picture stays up. A 401
   * or 403 is retried {@link AuthRetries} (2) times, about a second apart, calling this each time; if
   * the server still refuses, the hook stops with a fatal error. Without `getHeaders` the headers
   * cannot change, so a 401 or 403 is fatal at once.
   */
  getHeaders?: (() => HeaderRecord | Promise<HeaderRecord>) | undefined
  /** Close the connection while the tab is hidden and reopen it when shown. Default true. */
  pauseWhenHidden?: boolean | undefined
  /** Reconnect delay bounds; the server's `retry:` and `Retry-After` are floors on top. */
  backoff?: BackoffOptions | undefined
  /**
   * Report and retry an attempt that has no response after this long. Default 10 s. A page with more
   * streams than the browser has connections per host (six over HTTP/1.1) waits here.
   */
  connectTimeoutMs?: number | undefined
  /** Reconnect when nothing (frame or heartbeat) arrives for this long. Default 37.5 s. */
  stallTimeoutMs?: number | undefined
  /** How often the returned counters update, in ms. Default 250. */
  statsIntervalMs?: number | undefined
  /** `'none'` asks the server to leave out the JPEG (counters only). Default `'jpeg'`. */
  payload?: 'jpeg' | 'none' | undefined
  /**
   * Asks the server for at most this many frames per second (`?fps=`, fractions allowed); the frames
   * in between are skipped there and cost no bandwidth. Default: every frame.
   */
  fps?: number | undefined
  /**
   * Asks the server for frames this wide (`?width=`; it picks the nearest size it offers), for
   * thumbnails. Takes effect once the server supports it; until then frames come at full size.
   * Default: full size.
   */
  width?: number | undefined
  /** The fetch to use (tests, custom auth, instrumentation); called for every attempt. */
  fetch?: typeof fetch | undefined
  /**
   * Called for every frame, inside the stream reader: keep it cheap. Errors it throws are reported
   * and do not affect the connection. To draw frames, prefer `frames` with `<FrameCanvas>`.
   */
  onFrame?: ((frame: Frame) => void) | undefined
}

/** Connection state and counters, as last published. */
export interface FrameStreamStats {
  status: ConnectionStatus
  /**
   * The latest failure, null once open. Set while reconnecting, after a fatal error, and while an
   * attempt waits longer than `connectTimeoutMs` for an answer (the status stays `connecting`
   * or `reconnecting`).
   */
  error: FrameStreamError | null
  /** The source's state from `event: status`, null until the server sends one. */
  state: SourceState | null
  /** The reason given with the source's state, if any. */
  stateReason: string | null
  /** Frames received per second over the last second. */
  fps: number
  /** Frames received since the stream (url, stream name) was chosen. */
  received: number
  /** Frames skipped: gaps in `seq` within a connection, plus frames replaced before a renderer took them. */
  dropped: number
  /** `seq` of the newest frame, null before the first. */
  lastSeq: number | null
  /** Mean of (receive time − server `ts`) over the last interval, in ms; null before the first frame. */
  delayMs: number | null
  /** Size of the newest frame. */
  width: number
  height: number
  /** Successful opens so far (1 after the first connect; more after reconnects). */
  opens: number
}

export interface FrameStream extends FrameStreamStats {
  /** The newest-frame slot for a renderer such as `<FrameCanvas frames={...}>`. Stable per hook. */
  frames: FrameFeed
  /** Closes and reopens the connection, also after a fatal error (for example once a token is refreshed). */
  reconnect(): void
}

/** Mutable counters written by the stream reader; React sees copies of them. */
interface Counters extends Omit<FrameStreamStats, 'fps' | 'delayMs'> {
  /** `seq` a gap is measured from; reset on every open so time away is not counted as drops. */
  gapFrom: number | null
  delaySum: number
  delayCount: number
  delayMs: number | null
  fps: number
  /** (time, received) samples for the fps window. */
  samples: Array<[number, number]>
}

function freshCounters(): Counters {
  return {
    status: 'closed',
    error: null,
    state: null,
    stateReason: null,
    received: 0,
    dropped: 0,
    lastSeq: null,
    width: 0,
    height: 0,
    opens: 0,
    gapFrom: null,
    delaySum: 0,
    delayCount: 0,
    delayMs: null,
    fps: 0,
    samples: [],
  }
}

function statsOf(c: Counters): FrameStreamStats {
  return {
    status: c.status,
    error: c.error,
    state: c.state,
    stateReason: c.stateReason,
    fps: c.fps,
    received: c.received,
    dropped: c.dropped,
    lastSeq: c.lastSeq,
    delayMs: c.delayMs,
    width: c.width,
    height: c.height,
    opens: c.opens,
  }
}

function sameStats(a: FrameStreamStats, b: FrameStreamStats): boolean {
  return (Object.keys(a) as Array<keyof FrameStreamStats>).every(key => Object.is(a[key], b[key]))
}

/** Folds the frames since the last tick into `fps` and `delayMs`. */
function tick(c: Counters, now: number): void {
  c.samples.push([now, c.received])
  while (c.samples.length > 2 && now - c.samples[1]![0] >= FpsWindowMs) c.samples.shift()
  const [t0, r0] = c.samples[0]!
  c.fps = now > t0 ? Math.round(((c.received - r0) * 1000) / (now - t0) * 10) / 10 : 0
  if (c.delayCount > 0) c.delayMs = Math.round(c.delaySum / c.delayCount)
  c.delaySum = 0
  c.delayCount = 0
}

/** Where a connection (the hook's own, or the provider's) delivers this hook's events: into its counters and slot. */
function counterSink(
  c: Counters,
  frames: FrameSlot,
  latest: { readonly current: UseFrameStreamOptions },
  publish: () => void,
): StreamSink {
  return {
    onStatus(status, error) {
      c.status = status
      c.error = error
      if (status === 'open') {
        c.opens += 1
        c.gapFrom = null
      }
      publish()
    },
    onFrame(frame) {
      c.received += 1
      if (c.gapFrom !== null && frame.seq > c.gapFrom + 1) c.dropped += frame.seq - c.gapFrom - 1
      c.gapFrom = frame.seq
      c.lastSeq = frame.seq
      c.width = frame.width
      c.height = frame.height
      c.delaySum += frame.receivedAt - frame.ts
      c.delayCount += 1
      if (frames.offer(frame)) c.dropped += 1
      const onFrame = latest.current.onFrame
      if (onFrame) {
        try {
          onFrame(frame)
        } catch (error) {
          reportError(error)
        }
      }
    },
    onSourceStatus(source) {
      c.state = source.state
      c.stateReason = source.reason ?? null
      publish()
    },
  }
}

/**
 * Subscribes to one framecast stream over Server-Sent Events and returns its connection state and
 * counters, updated a few times a second. Reconnects with jittered backoff after errors, server
 * restarts and stalls, and at once when the server ends the stream because the access token
 * expired. Stops until `reconnect()` on 404/204, and on 401/403 once retries with fresh `getHeaders`
 * have not helped (at once without `getHeaders`). One connection per mounted hook, unless it is under a
 * `<FrameStreamProvider>`, which carries the streams of all its hooks on one connection.
 *
 * @example
 * ```tsx
 * function Camera() {
 *   const live = useFrameStream({
 *     url: 'https://cams.example.com/events',
 *     stream: 'door',
 *     getHeaders: () => ({ Authorization: `Bearer ${getToken()}` }),
 *   })
 *   return (
 *     <figure>
 *       <FrameCanvas frames={live.frames} />
 *       <figcaption>{live.status} · {live.fps} fps · {live.dropped} dropped</figcaption>
 *     </figure>
 *   )
 * }
 * ```
 */
export function useFrameStream(options: UseFrameStreamOptions = {}): FrameStream {
  const { url = '/events', stream, enabled = true, pauseWhenHidden = true, payload, fps, width } = options
  const statsIntervalMs = options.statsIntervalMs ?? DefaultStatsIntervalMs
  const hub = useContext(StreamHubContext)

  // Latest options, read by the connection at (re)connect time, so callers need not memoize them.
  const latest = useRef(options)
  /** What reconnect() acts on: the provider's hub and this hook's request, or null for the hook's own connection. */
  const target = useRef<{ hub: StreamHub; request: StreamRequest } | null>(null)
  useLayoutEffect(() => {
    latest.current = options
    target.current = hub && { hub, request: { stream: stream ?? DefaultStreamName, fps, payload, width } }
  })

  const counters = useRef<Counters | null>(null)
  counters.current ??= freshCounters()
  const slot = useRef<FrameSlot | null>(null)
  slot.current ??= createFrameSlot()

  const [stats, setStats] = useState<FrameStreamStats>(() => statsOf(counters.current!))
  const [generation, setGeneration] = useState(0)
  const hidden = useSyncExternalStore(subscribeVisibility, isHidden, neverHidden)
  // Under a provider, the provider pauses on hidden tabs for all its hooks.
  const live = enabled && (hub !== null || !(pauseWhenHidden && hidden))

  const publish = useCallback(() => {
    const next = statsOf(counters.current!)
    setStats(previous => (sameStats(previous, next) ? previous : next))
  }, [])

  // A new target starts from zero; pausing and reconnecting keep the counters.
  useEffect(() => {
    const status = counters.current!.status
    counters.current = { ...freshCounters(), status }
    slot.current!.clear()
    publish()
  }, [hub, url, stream, payload, fps, width, publish])

  // One connection per effect run: StrictMode's extra run opens and closes one, unmount closes the last.
  useEffect(() => {
    const c = counters.current!
    const frames = slot.current!
    if (!live) {
      c.status = 'closed'
      publish()
      return
    }
    const sink = counterSink(c, frames, latest, publish)
    const close = hub
      ? hub.subscribe({ stream: stream ?? DefaultStreamName, fps, payload, width }, sink)
      : openConnection(
          { url: eventsUrl(url, { streams: stream === undefined ? [] : [stream], payload, fps, width }), ...connectionOptions(latest) },
          { ...sink, onBadMessage: reportError },
        )
    return () => {
      close()
      frames.clear()
      c.status = 'closed'
      publish()
    }
  }, [hub, live, url, stream, payload, fps, width, generation, publish])

  // Counters reach React on a timer, so a 30 fps stream costs a few renders a second, not thirty.
  useEffect(() => {
    const timer = setInterval(() => {
      tick(counters.current!, Date.now())
      publish()
    }, statsIntervalMs)
    return () => clearInterval(timer)
  }, [statsIntervalMs, publish])

  const reconnect = useCallback(() => {
    const shared = target.current
    if (shared) shared.hub.reconnect(shared.request)
    else setGeneration(g => g + 1)
  }, [])
  return { ...stats, frames: slot.current, reconnect }
}

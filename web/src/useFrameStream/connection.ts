// One framecast `/events` connection over fetch-event-source, with no React in it: open-response checks,
// reconnect policy (jittered backoff floored at the server's `retry:`, `Retry-After`, an immediate reconnect when the
// access token of a stream open for a while expires, a few retries of 401/403), connect timeout, stall watchdog, headers per attempt.

import { fetchEventSource, type EventSourceMessage } from '@microsoft/fetch-event-source'

import { parseFrame, parseSourceStatus, type Frame, type SourceStatus } from '../frame'

/** Where the connection is, as the hook reports it. */
export type ConnectionStatus = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'error'

/** Bounds of the reconnect delay; see {@link backoffDelay}. */
export interface BackoffOptions {
  /** Upper bound of the random extra delay on the first retry; it doubles with each failed attempt. */
  initialMs?: number
  /** Longest delay between two attempts (unless the server's `retry:` or `Retry-After` asks for more). */
  maxMs?: number
}

/** Reconnect bounds used when the caller gives none. */
export const DefaultBackoff: Required<BackoffOptions> = { initialMs: 500, maxMs: 30_000 }

/** Reconnect floor until the server sends `retry:` (the EventSource default is about a second). */
export const DefaultRetryFloorMs = 1_000

/**
 * How long an open stream may go without a byte (frame, status or heartbeat) before it is treated as
 * dead. The server sends a heartbeat after 15 s of silence; 2.5 times that catches a half-open TCP
 * connection (a laptop that slept, a proxy that dropped it) without tripping on one slow heartbeat.
 */
export const DefaultStallTimeoutMs = 37_500

/**
 * How long one attempt may wait for the response head before it is reported and retried. framecast
 * answers `/events` at once (a camera that is still connecting shows in `event: status`), so a
 * longer wait means the request has not reached it: most often the browser holds it back because
 * the page already has six connections to this host (the HTTP/1.1 limit, shared by all tabs),
 * otherwise the server or the network is not answering.
 */
export const DefaultConnectTimeoutMs = 10_000

/**
 * How many 401/403 answers since the last good open are retried, each with headers fetched afresh,
 * before one counts as fatal. Two cover a token that expired on its way to the server and an app
 * still busy refreshing it (each retry waits the backoff's first step, about a second); a backend
 * that keeps refusing stops the hook a few seconds later instead of being asked forever.
 */
export const AuthRetries = 2

/**
 * How long a stream must have been open for its `token-expired` end to be followed by an immediate
 * reconnect. A token that ends its stream sooner was stale when it was sent (a backend handing out
 * a token already past `exp`, which the server still accepts within its leeway and then ends at
 * once): reconnecting at once would loop as fast as the network allows, so such an end waits the
 * usual backoff instead, growing each time it happens again.
 */
export const MinOpenForImmediateReconnectMs = 1_000

/** Content type a good `/events` response must have. */
const EventStreamContentType = 'text/event-stream'

/** The `reason` of the `event: end` framecast sends before it ends a stream whose access token expired. */
const TokenExpired = 'token-expired'

/** Why a connection failed or stopped; `fatal` errors end the reconnect loop. */
export class FrameStreamError extends Error {
  /** HTTP status of the response that caused it, if any. */
  readonly status: number | undefined
  /**
   * True when retrying cannot help (404, 204, other 4xx, and 401/403 once fresh headers have not
   * helped or cannot change): the hook stops until `reconnect()`.
   */
  readonly fatal: boolean
  /** Delay the server asked for with `Retry-After`, in milliseconds. */
  readonly retryAfterMs: number | undefined

  constructor(
    message: string,
    init: {
      status?: number | undefined
      fatal?: boolean | undefined
      retryAfterMs?: number | undefined
      cause?: unknown
    } = {},
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause })
    this.name = 'FrameStreamError'
    this.status = init.status
    this.fatal = init.fatal ?? false
    this.retryAfterMs = init.retryAfterMs
  }
}

/** Headers sent with a request, as a plain object (fetch-event-source drops `Headers` instances). */
export type HeaderRecord = Record<string, string>

/** Everything one connection needs; all of it is read when the connection (re)opens. */
export interface ConnectionOptions {
  /** Absolute or page-relative URL of `/events`, query included. */
  url: string
  /** Returns the headers for the next attempt; called before every connect and reconnect. */
  headers: () => HeaderRecord | Promise<HeaderRecord>
  /** How many 401/403 answers since the last good open are retried; 0 when `headers` cannot change. */
  authRetries: number
  /** The fetch to use; the global one when absent. */
  fetch?: typeof fetch | undefined
  backoff: Required<BackoffOptions>
  connectTimeoutMs: number
  stallTimeoutMs: number
}

/** What the connection tells its owner. Callbacks never run after `close()`. */
export interface ConnectionEvents {
  /** Status changed; `error` is the latest failure (kept while reconnecting), null once open. */
  onStatus(status: ConnectionStatus, error: FrameStreamError | null): void
  /** A frame arrived. Runs inside the stream reader, so it must be cheap. */
  onFrame(frame: Frame): void
  /** The source behind the stream changed state (`event: status`). */
  onSourceStatus(status: SourceStatus): void
  /** A message could not be read (bad JSON); the stream goes on. */
  onBadMessage(error: unknown): void
}

/**
 * The delay before reconnect attempt `attempt` (1 for the first retry): the server's floor plus a
 * uniformly random extra of up to `initialMs * 2^(attempt-1)` ("full jitter", so many clients that
 * lost the same server do not come back in step), never above `max(maxMs, floorMs)`.
 */
export function backoffDelay(
  attempt: number,
  backoff: Required<BackoffOptions>,
  floorMs: number,
  random: () => number = Math.random,
): number {
  const room = Math.max(0, backoff.maxMs - floorMs)
  const spread = Math.min(room, backoff.initialMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(floorMs + random() * spread)
}

/** Reads `Retry-After` (delta seconds or an HTTP date) as milliseconds from now. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** The error reported when an attempt got no response within `timeoutMs`. */
function connectTimeoutError(timeoutMs: number): FrameStreamError {
  const seconds = Math.round(timeoutMs / 100) / 10
  return new FrameStreamError(
    `no connection after ${seconds} s — the browser may be out of connections to this server ` +
      '(six per host over HTTP/1.1, shared by all tabs), or the server is not answering; still trying',
  )
}

/** Reads the `reason` of an `event: end`; null if it has none. */
function parseEndReason(data: string): string | null {
  const value: unknown = JSON.parse(data)
  if (typeof value !== 'object' || value === null) return null
  const { reason } = value as { reason?: unknown }
  return typeof reason === 'string' ? reason : null
}

/** True for the answers a fresh token may cure. */
function isAuthRefusal(status: number | undefined): boolean {
  return status === 401 || status === 403
}

/**
 * Decides what an `/events` response means; throws a FrameStreamError unless the stream can be read.
 * `retryAuth` says whether a 401/403 may be tried again with fresh headers.
 */
function checkResponse(response: Response, retryAuth: boolean): void {
  const { status } = response
  const type = response.headers.get('content-type') ?? ''
  if (response.ok && status !== 204 && type.startsWith(EventStreamContentType)) return

  // The body will not be read: release it so the connection is not held until garbage collection.
  void response.body?.cancel().catch(() => {})
  if (status === 204) {
    throw new FrameStreamError('server asked the client to stop (204 No Content)', { status, fatal: true })
  }
  if (status === 408 || status === 429 || status >= 500) {
    throw new FrameStreamError(`server answered ${status}; retrying`, {
      status,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    })
  }
  if (isAuthRefusal(status)) {
    throw retryAuth
      ? new FrameStreamError(`not authorized (${status}); retrying with fresh headers`, { status })
      : new FrameStreamError(`not authorized (${status})`, { status, fatal: true })
  }
  if (status >= 400) {
    const why = status === 404 ? 'no such stream' : 'request refused'
    throw new FrameStreamError(`${why} (${status})`, { status, fatal: true })
  }
  throw new FrameStreamError(`expected ${EventStreamContentType}, got ${status} ${type || 'no content type'}`, {
    status,
  })
}

/**
 * Opens `/events` and keeps it open until the returned function is called: reconnects after
 * network errors, 5xx/429/408, a clean end of the body (server restart) and stalls, and at once
 * after `event: end` with reason `token-expired` (after the backoff if the stream had only just
 * opened); retries 401/403 up to `authRetries` times; stops for good on 204 and other 4xx. The returned close function is idempotent and fires no callbacks.
 */
export function openConnection(options: ConnectionOptions, events: ConnectionEvents): () => void {
  // One controller for the whole connection: aborting it ends fetch-event-source's loop and its retry timer.
  const controller = new AbortController()
  let closed = false
  /** Failed attempts since the last good open. */
  let attempt = 0
  /** `attempt` as it was before the current open, restored if the stream proves stale-tokened. */
  let attemptBeforeOpen = 0
  /** When the current response opened. */
  let openedAt = 0
  /** 401/403 answers since the last good open. */
  let authRefusals = 0
  /** The `reason` of the current response's `event: end`, once the server has sent one. */
  let endReason: string | null = null
  let everOpened = false
  let retryFloorMs = DefaultRetryFloorMs
  /** Aborts only the current request; the watchdog uses it to force a retry through `onerror`. */
  let request: AbortController | null = null
  let lastActivity = 0
  let stalled = false
  let watchdog: ReturnType<typeof setInterval> | undefined
  /** Runs from the moment a request goes out until its response head arrives. */
  let connectTimer: ReturnType<typeof setTimeout> | undefined
  let connectTimedOut = false

  const setStatus = (status: ConnectionStatus, error: FrameStreamError | null) => {
    if (!closed) events.onStatus(status, error)
  }
  const stopWatchdog = () => {
    if (watchdog !== undefined) clearInterval(watchdog)
    watchdog = undefined
  }
  const stopConnectTimer = () => {
    if (connectTimer !== undefined) clearTimeout(connectTimer)
    connectTimer = undefined
  }
  // A request the browser queues (no free connection) neither fails nor opens: give up on it after a
  // while, so the owner hears about it, and retry through `onerror` like any other failure.
  const startConnectTimer = (attemptRequest: AbortController) => {
    stopConnectTimer()
    connectTimer = setTimeout(() => {
      connectTimer = undefined
      if (closed || attemptRequest.signal.aborted) return
      connectTimedOut = true
      attemptRequest.abort()
    }, options.connectTimeoutMs)
  }
  const startWatchdog = () => {
    stopWatchdog()
    lastActivity = Date.now()
    watchdog = setInterval(
      () => {
        if (closed || request === null || Date.now() - lastActivity < options.stallTimeoutMs) return
        stalled = true
        stopWatchdog()
        request.abort()
      },
      Math.max(50, Math.floor(options.stallTimeoutMs / 4)),
    )
  }

  // Called by fetch-event-source for every attempt, so fresh headers (a refreshed token) go out each time.
  const fetchAttempt = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const perRequest = new AbortController()
    const librarySignal = init?.signal
    if (librarySignal) {
      if (librarySignal.aborted) perRequest.abort()
      else librarySignal.addEventListener('abort', () => perRequest.abort(), { once: true })
    }
    request = perRequest
    stalled = false
    connectTimedOut = false
    endReason = null
    const extra = await options.headers()
    if (perRequest.signal.aborted || closed) throw new DOMException('connection closed', 'AbortError')
    startConnectTimer(perRequest)
    const headers = { ...(init?.headers as HeaderRecord | undefined), ...extra }
    const doFetch = options.fetch ?? ((i: RequestInfo | URL, r?: RequestInit) => globalThis.fetch(i, r))
    return doFetch(input, { ...init, headers, signal: perRequest.signal, cache: 'no-store' })
  }

  const onopen = async (response: Response) => {
    stopConnectTimer()
    if (closed) return
    checkResponse(response, authRefusals < options.authRetries)
    attemptBeforeOpen = attempt
    attempt = 0
    openedAt = Date.now()
    authRefusals = 0
    everOpened = true
    startWatchdog()
    setStatus('open', null)
  }

  const onmessage = (message: EventSourceMessage) => {
    if (closed) return
    lastActivity = Date.now()
    if (message.retry !== undefined && message.retry >= 0) retryFloorMs = message.retry
    // Comment-only blocks (`: keep-alive`) and `retry:`-only blocks arrive with empty data.
    if (message.data === '') return
    try {
      if (message.event === 'status') {
        const status = parseSourceStatus(message.data)
        if (status) events.onSourceStatus(status)
      } else if (message.event === 'frame' || message.event === '') {
        const frame = parseFrame(message.data, Date.now())
        if (frame) events.onFrame(frame)
      } else if (message.event === 'end') {
        // The server ends the body right after this; onerror reads the reason then.
        endReason = parseEndReason(message.data)
      }
    } catch (error) {
      // A throw here would make fetch-event-source drop the connection and reconnect in a loop.
      events.onBadMessage(error)
    }
  }

  const onclose = () => {
    // fetch-event-source resolves (and stops) when the body ends; a server restart must reconnect instead.
    const why = endReason === null ? '' : ` (${endReason})`
    throw new FrameStreamError(`server ended the stream${why}`)
  }

  /** The FrameStreamError for whatever ended an attempt. */
  const describeFailure = (cause: unknown): FrameStreamError =>
    cause instanceof FrameStreamError
      ? cause
      : stalled
        ? new FrameStreamError(`no data for ${options.stallTimeoutMs} ms; reconnecting`)
        : connectTimedOut
          ? connectTimeoutError(options.connectTimeoutMs)
          : new FrameStreamError(cause instanceof Error ? cause.message : 'network error', { cause })

  // An expired token is no failure of the server or the network: waiting would only leave the
  // picture frozen, and the next attempt asks for fresh headers. So no delay and no attempt counted.
  const reconnectWithFreshToken = (): number => {
    setStatus('reconnecting', new FrameStreamError('access token expired; reconnecting with fresh headers'))
    return 0
  }

  // The first backoff step each time: long enough for an app to finish refreshing its token.
  const retryAuthRefusal = (error: FrameStreamError): number => {
    authRefusals += 1
    setStatus(everOpened ? 'reconnecting' : 'connecting', error)
    return backoffDelay(1, options.backoff, retryFloorMs)
  }

  const onerror = (cause: unknown): number => {
    stopWatchdog()
    stopConnectTimer()
    if (closed) throw cause
    const staleToken = endReason === TokenExpired && Date.now() - openedAt < MinOpenForImmediateReconnectMs
    if (endReason === TokenExpired && !staleToken) return reconnectWithFreshToken()
    // A token stale on arrival made that open no success: the backoff goes on from where it was.
    if (staleToken) attempt = attemptBeforeOpen
    const error = staleToken
      ? new FrameStreamError('access token expired as the stream opened; reconnecting after a delay')
      : describeFailure(cause)
    if (error.fatal) {
      setStatus('error', error)
      throw error // the only way to stop fetch-event-source's retry loop
    }
    if (isAuthRefusal(error.status)) return retryAuthRefusal(error)
    attempt += 1
    setStatus(everOpened ? 'reconnecting' : 'connecting', error)
    const delay = backoffDelay(attempt, options.backoff, retryFloorMs)
    return Math.max(delay, error.retryAfterMs ?? 0)
  }

  setStatus('connecting', null)
  fetchEventSource(options.url, {
    signal: controller.signal,
    // The hook pauses on hidden tabs itself; the library's own pausing can orphan a connection.
    openWhenHidden: true,
    fetch: fetchAttempt,
    onopen,
    onmessage,
    onclose,
    onerror,
  }).catch(() => {
    // It rejects only when onerror rethrows: after close(), or with a fatal error already reported.
  })

  return () => {
    if (closed) return
    closed = true
    stopWatchdog()
    stopConnectTimer()
    controller.abort()
  }
}

// Tests of useFrameStream against an injected fetch whose event stream each test writes by hand.

import { act, cleanup, renderHook } from '@testing-library/react'
import { StrictMode } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { AuthRetries, DefaultConnectTimeoutMs, FrameStreamError, MinOpenForImmediateReconnectMs } from './connection'
import { createMockEventServer, endEvent, frameEvent, type MockEventServer } from './mockEventServer'
import { useFrameStream, type UseFrameStreamOptions } from './useFrameStream'

/** Lets pending stream reads and promise callbacks run, then moves fake time on by `ms`. */
async function advance(ms = 0): Promise<void> {
  await act(async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve()
    await vi.advanceTimersByTimeAsync(ms)
    for (let i = 0; i < 20; i++) await Promise.resolve()
  })
}

function setVisibility(state: 'visible' | 'hidden'): void {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state })
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' })
  document.dispatchEvent(new Event('visibilitychange'))
}

let server: MockEventServer

function renderStream(options: UseFrameStreamOptions = {}, strict = false) {
  return renderHook((props: UseFrameStreamOptions) => useFrameStream(props), {
    initialProps: { fetch: server.fetch, url: 'http://cam.test/events', ...options },
    wrapper: strict ? StrictMode : undefined,
  })
}

beforeEach(() => {
  vi.useFakeTimers()
  server = createMockEventServer()
  setVisibility('visible')
})

afterEach(() => {
  cleanup()
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('reading the stream', () => {
  it('reads a frame split across chunks with CRLF line endings, even a CRLF split in two', async () => {
    const onFrame = vi.fn()
    const { result } = renderStream({ stream: 'cam-1', onFrame })
    await advance()
    expect(result.current.status).toBe('open')
    expect(server.requests[0]!.url).toBe('http://cam.test/events?stream=cam-1')
    expect(server.requests[0]!.headers['accept']).toBe('text/event-stream')

    const wire = ('retry: 2000\n\n' + frameEvent(7)).replace(/\n/g, '\r\n')
    const cut = wire.indexOf('\r\ndata:') + 1 // between the \r and the \n
    for (const chunk of [wire.slice(0, 5), wire.slice(5, 40), wire.slice(40, cut), wire.slice(cut, cut + 9), wire.slice(cut + 9)]) {
      server.requests[0]!.push(chunk)
      await advance()
    }

    expect(onFrame).toHaveBeenCalledTimes(1)
    expect(onFrame.mock.calls[0]![0]).toMatchObject({ stream: 'default', seq: 7, width: 4, height: 2, jpeg: '/9j/' })
    await advance(250)
    expect(result.current).toMatchObject({ received: 1, lastSeq: 7, width: 4, height: 2, dropped: 0 })
  })

  it('ignores heartbeat comments', async () => {
    const onFrame = vi.fn()
    const { result } = renderStream({ onFrame })
    await advance()
    server.requests[0]!.push(': keep-alive\n\n')
    server.requests[0]!.push(':\n\n')
    await advance(250)
    expect(onFrame).not.toHaveBeenCalled()
    expect(result.current).toMatchObject({ status: 'open', received: 0, lastSeq: null })
    expect(server.requests).toHaveLength(1)
  })

  it('exposes the source state from status events', async () => {
    const { result } = renderStream()
    await advance()
    expect(result.current.state).toBeNull()
    server.requests[0]!.push('event: status\ndata: {"stream":"default","state":"stalled","reason":"no frame for 5 s"}\n\n')
    await advance()
    expect(result.current).toMatchObject({ state: 'stalled', stateReason: 'no frame for 5 s' })
  })

  it('counts gaps in seq as dropped frames, but not the time spent reconnecting', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { result } = renderStream()
    await advance()
    server.requests[0]!.push(frameEvent(1) + frameEvent(2) + frameEvent(5))
    server.requests[0]!.end()
    await advance(1_000)
    server.requests[1]!.push(frameEvent(90))
    await advance(250)
    expect(result.current).toMatchObject({ received: 4, dropped: 2, lastSeq: 90, opens: 2 })
  })

  it('drops a waiting frame when a newer one replaces it before the renderer takes it', async () => {
    const { result } = renderStream()
    await advance()
    const unsubscribe = result.current.frames.subscribe(() => {})
    server.requests[0]!.push(frameEvent(1) + frameEvent(2) + frameEvent(3))
    await advance(250)
    expect(result.current.dropped).toBe(2)
    expect(result.current.frames.take()?.seq).toBe(3)
    expect(result.current.frames.take()).toBeNull()
    unsubscribe()
  })

  it('keeps the stream open when an onFrame callback throws', async () => {
    const reportError = vi.fn()
    vi.stubGlobal('reportError', reportError)
    const { result } = renderStream({
      onFrame: () => {
        throw new Error('app bug')
      },
    })
    await advance()
    server.requests[0]!.push(frameEvent(1) + frameEvent(2))
    await advance(5_000)
    expect(reportError).toHaveBeenCalledTimes(2)
    expect(result.current).toMatchObject({ status: 'open', received: 2 })
    expect(server.requests).toHaveLength(1)
    vi.unstubAllGlobals()
  })

  it('publishes counters a few times a second, not once per frame', async () => {
    let renders = 0
    const { result } = renderHook(() => {
      renders += 1
      return useFrameStream({ fetch: server.fetch, url: 'http://cam.test/events' })
    })
    await advance()
    const before = renders
    for (let seq = 1; seq <= 60; seq++) {
      server.requests[0]!.push(frameEvent(seq))
      await advance(1000 / 30)
    }
    expect(renders - before).toBeLessThanOrEqual(10) // 2 s at 4 Hz, plus slack
    expect(result.current.received).toBeGreaterThanOrEqual(52) // as of the last 250 ms tick
    expect(result.current.fps).toBeGreaterThan(27)
    expect(result.current.fps).toBeLessThan(33)
    expect(result.current.delayMs).not.toBeNull()
  })
})

describe('failures and reconnects', () => {
  it.each([401, 403, 404, 204])('stops for good on %i with a fatal error', async status => {
    server.answerNext({ status })
    const { result } = renderStream()
    await advance()
    expect(result.current.status).toBe('error')
    expect(result.current.error).toBeInstanceOf(FrameStreamError)
    expect(result.current.error).toMatchObject({ status, fatal: true })
    await advance(120_000)
    expect(server.requests).toHaveLength(1)
  })

  it('tries again after a fatal error when reconnect() is called', async () => {
    server.answerNext({ status: 401 })
    const { result } = renderStream()
    await advance()
    expect(result.current.status).toBe('error')
    act(() => result.current.reconnect())
    await advance()
    expect(result.current.status).toBe('open')
    expect(server.live()).toHaveLength(1)
  })

  it('retries 503 after Retry-After, then with growing backoff, until the stream opens', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5)
    server.answerNext({ status: 503, headers: { 'retry-after': '3' } }, { status: 503 })
    const { result } = renderStream()
    await advance()
    expect(result.current.status).toBe('connecting')
    expect(result.current.error).toMatchObject({ status: 503, fatal: false })

    await advance(2_999)
    expect(server.requests).toHaveLength(1)
    await advance(1) // Retry-After: 3 s wins over the 1 s floor + 250 ms jitter
    expect(server.requests).toHaveLength(2)

    await advance(1_499)
    expect(server.requests).toHaveLength(2)
    await advance(1) // attempt 2: 1 s floor + 0.5 × 1 s
    expect(server.requests).toHaveLength(3)
    expect(result.current).toMatchObject({ status: 'open', error: null })
  })

  it('reconnects when the server ends the stream, no sooner than its retry: interval', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { result } = renderStream()
    await advance()
    server.requests[0]!.push('retry: 2000\n\n' + frameEvent(1))
    server.requests[0]!.end()
    await advance()
    expect(result.current.status).toBe('reconnecting')

    await advance(1_999)
    expect(server.requests).toHaveLength(1)
    await advance(1)
    expect(server.requests).toHaveLength(2)
    expect(result.current).toMatchObject({ status: 'open', opens: 2 })
    expect(server.requests[1]!.headers['last-event-id']).toBe('1')
  })

  it('calls getHeaders on every reconnect, so a refreshed token is sent', async () => {
    let token = 0
    const getHeaders = vi.fn(() => ({ Authorization: `Bearer t${++token}` }))
    renderStream({ headers: { 'x-app': 'demo' }, getHeaders })
    await advance()
    server.requests[0]!.end()
    await advance(5_000)
    expect(server.requests.map(r => r.headers['Authorization'])).toEqual(['Bearer t1', 'Bearer t2'])
    expect(server.requests[1]!.headers['x-app']).toBe('demo')
  })

  it('says so when no connection opens within the connect timeout, and keeps trying', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    // As on a page with more streams than the browser has connections: requests wait unanswered.
    server.holdNext(2)
    const { result } = renderStream()
    await advance(DefaultConnectTimeoutMs - 1)
    expect(result.current).toMatchObject({ status: 'connecting', error: null })
    expect(server.requests[0]!.aborted).toBe(false)

    await advance(1)
    expect(server.requests[0]!.aborted).toBe(true)
    expect(result.current.status).toBe('connecting')
    expect(result.current.error?.message).toBe(
      'no connection after 10 s — the browser may be out of connections to this server ' +
        '(six per host over HTTP/1.1, shared by all tabs), or the server is not answering; still trying',
    )
    expect(result.current.error?.fatal).toBe(false)

    await advance(1_000) // the retry floor, no jitter
    expect(server.requests).toHaveLength(2)
    await advance(DefaultConnectTimeoutMs + 1_000) // held again, so another timeout, then a third attempt
    expect(server.requests).toHaveLength(3)
    expect(result.current).toMatchObject({ status: 'open', error: null, opens: 1 })
  })

  it('a connection that answers in time is not timed out, however long it then stays open', async () => {
    const { result } = renderStream({ connectTimeoutMs: 1_000, stallTimeoutMs: 60_000 })
    await advance()
    for (let i = 0; i < 5; i++) {
      server.requests[0]!.push(': keep-alive\n\n')
      await advance(1_000)
    }
    expect(result.current).toMatchObject({ status: 'open', error: null })
    expect(server.requests).toHaveLength(1)
  })

  it('reconnects when nothing, not even a heartbeat, arrives within the stall timeout', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { result } = renderStream({ stallTimeoutMs: 1_000 })
    await advance()
    await advance(800)
    server.requests[0]!.push(': keep-alive\n\n')
    await advance(800)
    expect(server.requests[0]!.aborted).toBe(false)

    await advance(1_000)
    expect(server.requests[0]!.aborted).toBe(true)
    expect(result.current.status).toBe('reconnecting')
    await advance(1_000)
    expect(server.requests).toHaveLength(2)
    expect(server.live()).toHaveLength(1)
  })
})

describe('access tokens', () => {
  /** A getHeaders that hands out a new bearer token, t1, t2, ..., on every call. */
  function tokenSource() {
    let token = 0
    return vi.fn(() => ({ Authorization: `Bearer t${++token}` }))
  }
  const tokensSent = () => server.requests.map(r => r.headers['Authorization'])

  it('reconnects at once with a fresh token when the token expires, keeping the last frame', async () => {
    let token = 0
    let release = () => {}
    // The second call waits until released, so the moment between the two connections can be looked at.
    const getHeaders = vi.fn(async () => {
      token += 1
      if (token === 2) await new Promise<void>(resolve => (release = resolve))
      return { Authorization: `Bearer t${token}` }
    })
    const { result } = renderStream({ getHeaders })
    await advance()
    const unsubscribe = result.current.frames.subscribe(() => {})
    server.requests[0]!.push(frameEvent(1))
    await advance(MinOpenForImmediateReconnectMs) // the token lived long enough to be no stale one
    server.requests[0]!.push(endEvent('token-expired'))
    server.requests[0]!.end()

    await advance() // no time passes: the usual reconnect would wait at least the 1 s floor
    expect(getHeaders).toHaveBeenCalledTimes(2)
    expect(result.current).toMatchObject({ status: 'reconnecting', lastSeq: 1, width: 4, height: 2 })
    expect(result.current.error).toMatchObject({
      message: 'access token expired; reconnecting with fresh headers',
      fatal: false,
    })

    release()
    await advance()
    expect(tokensSent()).toEqual(['Bearer t1', 'Bearer t2'])
    expect(result.current).toMatchObject({ status: 'open', error: null, opens: 2, lastSeq: 1 })
    expect(result.current.frames.take()?.seq).toBe(1) // the frame survived the reconnect
    unsubscribe()
  })

  it('backs off, growing, when tokens keep expiring as soon as their stream opens', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(1)
    const getHeaders = tokenSource()
    const { result } = renderStream({ getHeaders })
    // As when the backend hands out tokens already past exp, which the server takes within its leeway.
    const endAtOnce = async () => {
      await advance()
      server.requests.at(-1)!.push(endEvent('token-expired'))
      server.requests.at(-1)!.end()
      await advance()
    }
    const nextRequestAfter = async (ms: number) => {
      const made = server.requests.length
      await advance(ms - 1)
      expect(server.requests).toHaveLength(made)
      await advance(1)
      expect(server.requests).toHaveLength(made + 1)
    }

    await endAtOnce()
    expect(result.current.status).toBe('reconnecting')
    expect(result.current.error).toMatchObject({
      message: 'access token expired as the stream opened; reconnecting after a delay',
      fatal: false,
    })
    // The usual backoff, growing: the 1 s floor plus the full jitter of 500 ms, then 1 s, then 2 s.
    await nextRequestAfter(1_500)
    await endAtOnce()
    await nextRequestAfter(2_000)
    await endAtOnce()
    await nextRequestAfter(3_000)
    expect(getHeaders).toHaveBeenCalledTimes(4)

    // A token that lasts brings the immediate reconnect back, and the backoff starts afresh.
    await advance(MinOpenForImmediateReconnectMs)
    await endAtOnce()
    expect(server.requests).toHaveLength(5)
    expect(result.current.status).toBe('open')
    await endAtOnce()
    await nextRequestAfter(1_500)
  })

  it('treats an end for another reason as the end of the stream, reconnecting after the usual delay', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { result } = renderStream({ getHeaders: tokenSource() })
    await advance()
    server.requests[0]!.push(endEvent('shutdown'))
    server.requests[0]!.end()
    await advance()
    expect(result.current.status).toBe('reconnecting')
    expect(result.current.error?.message).toBe('server ended the stream (shutdown)')

    await advance(999)
    expect(server.requests).toHaveLength(1)
    await advance(1)
    expect(server.requests).toHaveLength(2)
  })

  it('retries a 401 with a fresh token from getHeaders, and opens', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    server.answerNext({ status: 401, headers: { 'www-authenticate': 'Bearer' }, body: '{"error":"token expired"}' })
    const { result } = renderStream({ getHeaders: tokenSource() })
    await advance()
    expect(result.current.status).toBe('connecting')
    expect(result.current.error).toMatchObject({ status: 401, fatal: false })

    await advance(999)
    expect(server.requests).toHaveLength(1)
    await advance(1) // the backoff's first step: the 1 s floor, no jitter
    expect(tokensSent()).toEqual(['Bearer t1', 'Bearer t2'])
    expect(result.current).toMatchObject({ status: 'open', error: null })
  })

  it.each([401, 403])('stops with a fatal error when %i comes back after every fresh token', async status => {
    // One answer more than the hook retries: a fourth request would get a stream and open.
    server.answerNext({ status }, { status }, { status })
    const getHeaders = tokenSource()
    const { result } = renderStream({ getHeaders })
    await advance(10_000)
    expect(result.current.status).toBe('error')
    expect(result.current.error).toMatchObject({ status, fatal: true })
    expect(getHeaders).toHaveBeenCalledTimes(1 + AuthRetries)
    expect(AuthRetries).toBe(2)

    await advance(120_000)
    expect(server.requests).toHaveLength(3)
  })

  it('counts refusals afresh after a good open', async () => {
    server.answerNext({ status: 401 }, { status: 401 })
    const { result } = renderStream({ getHeaders: tokenSource() })
    await advance(5_000)
    expect(result.current).toMatchObject({ status: 'open', opens: 1 })

    server.answerNext({ status: 403 }, { status: 403 })
    server.requests[2]!.push(endEvent('token-expired'))
    server.requests[2]!.end()
    await advance(5_000)
    expect(result.current).toMatchObject({ status: 'open', opens: 2 })
    expect(server.requests).toHaveLength(6)
  })

  it('stops at once on 401 when the token is in static headers, which cannot change', async () => {
    server.answerNext({ status: 401 })
    const { result } = renderStream({ headers: { Authorization: 'Bearer fixed' } })
    await advance(120_000)
    expect(result.current.error).toMatchObject({ status: 401, fatal: true })
    expect(server.requests).toHaveLength(1)
  })
})

describe('lifecycle', () => {
  it('leaves exactly one open connection under StrictMode, and none after unmount', async () => {
    const { result, unmount } = renderStream({}, true)
    await advance()
    // StrictMode's throwaway mount is aborted before (or right after) its request goes out.
    expect(server.requests.length).toBeLessThanOrEqual(2)
    expect(server.live()).toHaveLength(1)
    const made = server.requests.length
    expect(result.current.status).toBe('open')

    unmount()
    await advance()
    expect(server.live()).toHaveLength(0)
    await advance(120_000)
    expect(server.requests).toHaveLength(made)
  })

  it('opens nothing while disabled and closes when disabled', async () => {
    const { result, rerender } = renderStream({ enabled: false })
    await advance(5_000)
    expect(server.requests).toHaveLength(0)
    expect(result.current.status).toBe('closed')

    rerender({ fetch: server.fetch, url: 'http://cam.test/events', enabled: true })
    await advance()
    expect(server.live()).toHaveLength(1)
    rerender({ fetch: server.fetch, url: 'http://cam.test/events', enabled: false })
    await advance(5_000)
    expect(server.live()).toHaveLength(0)
    expect(result.current.status).toBe('closed')
  })

  it('switching streams closes the old connection and starts counting afresh', async () => {
    const { result, rerender } = renderStream({ stream: 'a' })
    await advance()
    server.requests[0]!.push(frameEvent(1))
    await advance(250)
    expect(result.current.received).toBe(1)

    rerender({ fetch: server.fetch, url: 'http://cam.test/events', stream: 'b' })
    await advance(250)
    expect(server.requests.map(r => [r.url.split('?')[1], r.live])).toEqual([
      ['stream=a', false],
      ['stream=b', true],
    ])
    expect(result.current).toMatchObject({ status: 'open', received: 0, lastSeq: null })
  })

  it('closes while the tab is hidden and reopens when it is shown', async () => {
    const { result } = renderStream()
    await advance()
    act(() => setVisibility('hidden'))
    await advance()
    expect(server.live()).toHaveLength(0)
    expect(result.current.status).toBe('closed')

    act(() => setVisibility('visible'))
    await advance()
    expect(server.requests).toHaveLength(2)
    expect(server.live()).toHaveLength(1)
    expect(result.current.status).toBe('open')
  })

  it('stays open while hidden when pauseWhenHidden is false', async () => {
    renderStream({ pauseWhenHidden: false })
    await advance()
    act(() => setVisibility('hidden'))
    await advance(5_000)
    expect(server.requests).toHaveLength(1)
    expect(server.live()).toHaveLength(1)
  })
})

describe('query parameters', () => {
  it('passes fps and width to the server, and a change of either reconnects', async () => {
    const { rerender } = renderStream({ stream: 'a', fps: 2.5, width: 320 })
    await advance()
    rerender({ fetch: server.fetch, url: 'http://cam.test/events', stream: 'a', fps: 10 })
    await advance()
    expect(server.requests.map(r => [r.url.split('?')[1], r.live])).toEqual([
      ['stream=a&fps=2.5&width=320', false],
      ['stream=a&fps=10', true],
    ])
  })
})

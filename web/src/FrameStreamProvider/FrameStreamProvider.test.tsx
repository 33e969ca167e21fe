// Tests of <FrameStreamProvider>: hooks below it share connections (batched, grouped, chunked), each with its own
// frames, state and counters; against the same injected fetch as the hook's tests.

import { act, cleanup, render } from '@testing-library/react'
import { StrictMode } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { DefaultConnectTimeoutMs } from '../useFrameStream/connection'
import { createMockEventServer, frameEvent, type MockEventServer } from '../useFrameStream/mockEventServer'
import { useFrameStream, type FrameStream, type UseFrameStreamOptions } from '../useFrameStream/useFrameStream'
import { FrameStreamProvider, type FrameStreamProviderProps } from './FrameStreamProvider'
import { SubscribeBatchMs } from './streamHub'

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
/** Each tile's latest hook result, by tile id. */
let tiles: Record<string, FrameStream>
/** A tile's latest hook result. */
function tile(id: string): FrameStream {
  const found = tiles[id]
  if (!found) throw new Error(`no tile ${id}`)
  return found
}
/** Every status each tile rendered with, in order. */
let history: Record<string, string[]>

interface TileSpec extends UseFrameStreamOptions {
  id: string
}

function Tile({ id, ...options }: TileSpec) {
  const live = useFrameStream(options)
  tiles[id] = live
  const seen = (history[id] ??= [])
  if (seen.at(-1) !== live.status) seen.push(live.status)
  return null
}

function Wall({ specs, provider = {} }: { specs: TileSpec[]; provider?: FrameStreamProviderProps }) {
  return (
    <FrameStreamProvider url="http://cam.test/events" fetch={server.fetch} {...provider}>
      {specs.map(spec => (
        <Tile key={spec.id} {...spec} />
      ))}
    </FrameStreamProvider>
  )
}

/** Tiles named after their streams. */
const named = (...streams: string[]): TileSpec[] => streams.map(stream => ({ id: stream, stream }))

/** The query strings of the requests made, oldest first. */
const queries = () => server.requests.map(r => decodeURIComponent(new URL(r.url).search.slice(1)))

function statusEvent(stream: string, state: string, reason?: string): string {
  return `event: status\ndata: ${JSON.stringify({ stream, state, reason })}\n\n`
}

beforeEach(() => {
  vi.useFakeTimers()
  server = createMockEventServer()
  tiles = {}
  history = {}
  setVisibility('visible')
})

afterEach(() => {
  cleanup()
  vi.useRealTimers()
})

describe('one connection for many hooks', () => {
  it.each([false, true])('opens one request for sixteen hooks mounted in one render (StrictMode: %s)', async strict => {
    const names = Array.from({ length: 16 }, (_, i) => `cam${i + 1}`)
    const wall = <Wall specs={named(...names)} />
    render(strict ? <StrictMode>{wall}</StrictMode> : wall)
    await advance(SubscribeBatchMs)

    expect(server.requests).toHaveLength(1)
    expect(queries()[0]).toBe([...names].sort().map(name => `stream=${name}`).join('&'))
    for (const name of names) expect(tiles[name]!.status).toBe('open')
  })

  it('routes each stream’s frames and state to its own hooks, with their own counters', async () => {
    const onFrame = vi.fn()
    render(<Wall specs={[{ id: 'a', stream: 'a', onFrame }, { id: 'b', stream: 'b' }]} />)
    await advance(SubscribeBatchMs)
    const wire = server.requests[0]!
    wire.push(frameEvent(1, { stream: 'a' }) + frameEvent(2, { stream: 'a' }) + frameEvent(4, { stream: 'a' }))
    wire.push(frameEvent(70, { stream: 'b', width: 8 }) + statusEvent('b', 'stalled', 'no frame for 5 s'))
    wire.push(frameEvent(9, { stream: 'not-asked-for' }))
    await advance(250)

    expect(tile('a')).toMatchObject({ received: 3, dropped: 1, lastSeq: 4, state: null })
    expect(tile('b')).toMatchObject({ received: 1, dropped: 0, lastSeq: 70, width: 8, state: 'stalled', stateReason: 'no frame for 5 s' })
    expect(onFrame.mock.calls.map(([frame]) => [frame.stream, frame.seq])).toEqual([['a', 1], ['a', 2], ['a', 4]])
  })

  it('hooks on the same stream share it, and one that joins later gets its newest frame and state at once', async () => {
    const { rerender } = render(<Wall specs={[{ id: 'first', stream: 'a' }, { id: 'second', stream: 'a' }]} />)
    await advance(SubscribeBatchMs)
    expect(queries()).toEqual(['stream=a'])
    server.requests[0]!.push(statusEvent('a', 'live') + frameEvent(5, { stream: 'a' }))
    await advance(250)
    expect(tile('first')).toMatchObject({ received: 1, lastSeq: 5 })
    expect(tile('second')).toMatchObject({ received: 1, lastSeq: 5 })

    rerender(<Wall specs={[{ id: 'first', stream: 'a' }, { id: 'second', stream: 'a' }, { id: 'late', stream: 'a' }]} />)
    await advance(250)
    expect(server.requests).toHaveLength(1)
    expect(tile('late')).toMatchObject({ status: 'open', state: 'live', received: 1, lastSeq: 5 })
  })
})

describe('re-subscribing', () => {
  it('adding and removing hooks in one render opens one new request with the new set', async () => {
    const { rerender } = render(<Wall specs={named('a', 'b', 'c')} />)
    await advance(SubscribeBatchMs)
    rerender(<Wall specs={named('a', 'c', 'd', 'e')} />)
    await advance(SubscribeBatchMs)

    expect(queries()).toEqual(['stream=a&stream=b&stream=c', 'stream=a&stream=c&stream=d&stream=e'])
    expect(server.requests[0]!.aborted).toBe(true)
    expect(server.live()).toHaveLength(1)
    expect(tile('e').status).toBe('open')
  })

  it('streams that stay are not shown as connecting, keep their picture and count no frame twice', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { rerender } = render(<Wall specs={named('a', 'b')} />)
    await advance(SubscribeBatchMs)
    const drawn = vi.fn()
    const unsubscribe = tile('a').frames.subscribe(drawn)
    server.requests[0]!.push(frameEvent(3, { stream: 'a' }))
    await advance(250)
    expect(tile('a').frames.take()?.seq).toBe(3)

    // The new request waits unanswered, as when the browser holds it.
    server.holdNext(1)
    rerender(<Wall specs={named('a', 'c')} />)
    await advance(SubscribeBatchMs)
    expect(server.requests).toHaveLength(2)
    await advance(DefaultConnectTimeoutMs - 1)
    expect(tile('a')).toMatchObject({ status: 'open', error: null })
    expect(tile('c').status).toBe('connecting')

    // Past the connect timeout the stream that stayed hears about it, as a reconnect.
    await advance(1)
    expect(tile('a').status).toBe('reconnecting')
    expect(tile('a').error?.message).toMatch(/^no connection after 10 s/)
    await advance(1_000)
    expect(server.requests).toHaveLength(3)
    expect(tile('a')).toMatchObject({ status: 'open', error: null })
    const sinceOpen = history['a']!.slice(history['a']!.indexOf('open'))
    expect(sinceOpen).toEqual(['open', 'reconnecting', 'open'])

    // The new connection starts with each stream's newest frame: the one `a` has is not counted again.
    server.requests[2]!.push(frameEvent(3, { stream: 'a' }) + frameEvent(1, { stream: 'c' }) + frameEvent(4, { stream: 'a' }))
    await advance(250)
    expect(tile('a')).toMatchObject({ received: 2, lastSeq: 4, dropped: 0 })
    expect(drawn).toHaveBeenCalledTimes(2)
    unsubscribe()
  })

  it('a hook that is disabled leaves the set, and comes back when enabled', async () => {
    const { rerender } = render(<Wall specs={named('a', 'b')} />)
    await advance(SubscribeBatchMs)
    rerender(<Wall specs={[{ id: 'a', stream: 'a' }, { id: 'b', stream: 'b', enabled: false }]} />)
    await advance(SubscribeBatchMs)
    expect(tile('b').status).toBe('closed')
    rerender(<Wall specs={named('a', 'b')} />)
    await advance(SubscribeBatchMs)
    expect(queries()).toEqual(['stream=a&stream=b', 'stream=a', 'stream=a&stream=b'])
    expect(tile('b').status).toBe('open')
  })

  it('a hook with an invalid stream name fails alone', async () => {
    render(<Wall specs={named('a', 'no spaces')} />)
    await advance(SubscribeBatchMs)
    expect(queries()).toEqual(['stream=a'])
    expect(tile('a').status).toBe('open')
    expect(tile('no spaces')).toMatchObject({ status: 'error', error: { fatal: true } })
  })
})

describe('grouping', () => {
  it('hooks that ask for other fps, payload or width get their own connection; equal ones share', async () => {
    render(
      <Wall
        specs={[
          { id: 'a', stream: 'a', fps: 2.5 },
          { id: 'b', stream: 'b', fps: 2.5 },
          { id: 'c', stream: 'c' },
          { id: 'd', stream: 'd', payload: 'jpeg' },
          { id: 'e', stream: 'e', width: 320 },
          { id: 'f', stream: 'f', payload: 'none' },
        ]}
      />,
    )
    await advance(SubscribeBatchMs)
    expect(queries().sort()).toEqual(['stream=a&stream=b&fps=2.5', 'stream=c&stream=d', 'stream=e&width=320', 'stream=f&payload=none'])
    expect(Object.values(tiles).every(tile => tile.status === 'open')).toBe(true)
  })

  it('splits more streams than maxStreamsPerConnection over several connections, reopening only the changed one', async () => {
    const { rerender } = render(<Wall specs={named('a', 'b', 'c', 'd', 'e')} provider={{ maxStreamsPerConnection: 2 }} />)
    await advance(SubscribeBatchMs)
    expect(queries()).toEqual(['stream=a&stream=b', 'stream=c&stream=d', 'stream=e'])
    rerender(<Wall specs={named('a', 'b', 'c', 'd', 'e', 'f')} provider={{ maxStreamsPerConnection: 2 }} />)
    await advance(SubscribeBatchMs)
    expect(queries().slice(3)).toEqual(['stream=e&stream=f'])
    expect(server.live()).toHaveLength(3)
  })
})

describe('the provider’s connection', () => {
  it('connects only while enabled and the tab is visible', async () => {
    const { rerender } = render(<Wall specs={named('a', 'b')} provider={{ enabled: false }} />)
    await advance(5_000)
    expect(server.requests).toHaveLength(0)
    expect(tile('a').status).toBe('closed')

    rerender(<Wall specs={named('a', 'b')} />)
    await advance(SubscribeBatchMs)
    expect(server.live()).toHaveLength(1)
    act(() => setVisibility('hidden'))
    await advance(SubscribeBatchMs)
    expect(server.live()).toHaveLength(0)
    expect([tile('a').status, tile('b').status]).toEqual(['closed', 'closed'])

    act(() => setVisibility('visible'))
    await advance(SubscribeBatchMs)
    expect(server.requests).toHaveLength(2)
    expect([tile('a').status, tile('b').status]).toEqual(['open', 'open'])
  })

  it('asks getHeaders once per attempt for all its hooks', async () => {
    const getHeaders = vi.fn(() => ({ Authorization: 'Bearer t' }))
    render(<Wall specs={named('a', 'b', 'c')} provider={{ getHeaders, headers: { 'x-app': 'wall' } }} />)
    await advance(SubscribeBatchMs)
    expect(getHeaders).toHaveBeenCalledTimes(1)
    expect(server.requests[0]!.headers).toMatchObject({ Authorization: 'Bearer t', 'x-app': 'wall' })
  })

  it('a fatal answer reaches every hook on the connection; reconnect() from any of them reopens it', async () => {
    server.answerNext({ status: 403 })
    render(<Wall specs={named('a', 'b')} />)
    await advance(SubscribeBatchMs)
    expect(tile('a')).toMatchObject({ status: 'error', error: { status: 403, fatal: true } })
    expect(tile('b')).toMatchObject({ status: 'error', error: { status: 403, fatal: true } })

    act(() => tile('b').reconnect())
    await advance(SubscribeBatchMs)
    expect(queries()).toEqual(['stream=a&stream=b', 'stream=a&stream=b'])
    expect([tile('a').status, tile('b').status]).toEqual(['open', 'open'])
  })

  it('closes everything when it unmounts, and a new url is a new connection', async () => {
    const { rerender, unmount } = render(<Wall specs={named('a')} />)
    await advance(SubscribeBatchMs)
    rerender(<Wall specs={named('a')} provider={{ url: 'http://other.test/events' }} />)
    await advance(SubscribeBatchMs)
    expect(server.requests.map(r => [r.url, r.live])).toEqual([
      ['http://cam.test/events?stream=a', false],
      ['http://other.test/events?stream=a', true],
    ])
    unmount()
    await advance(120_000)
    expect(server.live()).toHaveLength(0)
    expect(server.requests).toHaveLength(2)
  })
})

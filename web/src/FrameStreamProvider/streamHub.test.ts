// Tests of the hub's pure parts: grouping, splitting and the request URL.

import { describe, expect, it } from 'vitest'

import { eventsUrl } from '../useFrameStream/eventsUrl'
import { chunkStreams, groupKey } from './streamHub'

describe('groupKey', () => {
  it('puts requests together that differ only in stream, and jpeg with the default payload', () => {
    expect(groupKey({ stream: 'a' })).toBe(groupKey({ stream: 'b', payload: 'jpeg' }))
    expect(groupKey({ stream: 'a', fps: 5 })).toBe(groupKey({ stream: 'b', fps: 5 }))
    const keys = [{}, { fps: 5 }, { fps: 0.5 }, { payload: 'none' as const }, { width: 320 }, { fps: 5, width: 320 }]
    expect(new Set(keys.map(k => groupKey({ stream: 'a', ...k }))).size).toBe(keys.length)
  })
})

describe('chunkStreams', () => {
  it('splits sorted names into connections of at most max', () => {
    expect(chunkStreams(['c', 'a', 'b'], 64)).toEqual([['a', 'b', 'c']])
    expect(chunkStreams(['e', 'd', 'c', 'b', 'a'], 2)).toEqual([['a', 'b'], ['c', 'd'], ['e']])
    expect(chunkStreams([], 64)).toEqual([])
    expect(chunkStreams(['a', 'b'], 0)).toEqual([['a'], ['b']])
  })
})

describe('eventsUrl', () => {
  it('repeats stream and adds payload, fps and width, keeping other parameters', () => {
    expect(eventsUrl('http://cam.test/events', { streams: ['a', 'b'], fps: 0.5, width: 320, payload: 'none' })).toBe(
      'http://cam.test/events?stream=a&stream=b&payload=none&fps=0.5&width=320',
    )
    expect(eventsUrl('http://cam.test/events?access_token=t&stream=x', { streams: ['a'] })).toBe(
      'http://cam.test/events?access_token=t&stream=a',
    )
    expect(eventsUrl('http://cam.test/events', { streams: [], payload: 'jpeg' })).toBe('http://cam.test/events')
  })
})

// Tests of the connection's pure parts: the reconnect delay and the reading of Retry-After.

import { describe, expect, it } from 'vitest'

import { backoffDelay, DefaultBackoff, parseRetryAfter } from './connection'

describe('backoffDelay', () => {
  it('grows exponentially with full jitter, floored at retry: and capped', () => {
    const backoff = { initialMs: 500, maxMs: 30_000 }
    expect(backoffDelay(1, backoff, 2_000, () => 0)).toBe(2_000)
    expect(backoffDelay(1, backoff, 2_000, () => 1)).toBe(2_500)
    expect(backoffDelay(4, backoff, 2_000, () => 1)).toBe(6_000)
    expect(backoffDelay(20, backoff, 2_000, () => 1)).toBe(30_000)
    expect(backoffDelay(20, backoff, 60_000, () => 1)).toBe(60_000) // the server's floor beats maxMs
    expect(DefaultBackoff).toEqual(backoff)
  })
})

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3_000)
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000)
    expect(parseRetryAfter(null)).toBeUndefined()
    expect(parseRetryAfter('soon')).toBeUndefined()
  })
})

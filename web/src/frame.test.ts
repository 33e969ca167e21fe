// Tests of the wire-format readers: frame and status JSON, base64 with and without Uint8Array.fromBase64.

import { afterEach, describe, expect, it, vi } from 'vitest'

import { decodeBase64, frameToBlob, parseFrame, parseSourceStatus } from './frame'

afterEach(() => {
  vi.resetModules()
})

describe('parseFrame', () => {
  it('reads the fields framecast sends and stamps the receive time', () => {
    const data = '{"stream":"door","seq":42,"ts":1764000000123,"width":640,"height":480,"size":3,"jpeg":"/9j/"}'
    expect(parseFrame(data, 99)).toEqual({
      stream: 'door',
      seq: 42,
      ts: 1764000000123,
      width: 640,
      height: 480,
      size: 3,
      jpeg: '/9j/',
      receivedAt: 99,
    })
  })

  it('accepts a frame without its JPEG (payload=none) and rejects what is not a frame', () => {
    const bare = parseFrame('{"seq":1,"ts":2}', 0)
    expect(bare).toMatchObject({ seq: 1 })
    expect(bare).not.toHaveProperty('jpeg')
    expect(parseFrame('{"state":"live"}', 0)).toBeNull()
    expect(parseFrame('null', 0)).toBeNull()
    expect(() => parseFrame('{', 0)).toThrow()
  })
})

describe('parseSourceStatus', () => {
  it('reads known states and ignores unknown ones', () => {
    expect(parseSourceStatus('{"stream":"x","state":"offline","reason":"camera gone"}')).toEqual({
      stream: 'x',
      state: 'offline',
      reason: 'camera gone',
    })
    expect(parseSourceStatus('{"stream":"x","state":"exploded"}')).toBeNull()
  })
})

describe('decodeBase64', () => {
  const jpegStart = [0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]

  it('decodes standard base64 into bytes', () => {
    expect([...decodeBase64('/9j/4AAQ')]).toEqual(jpegStart)
    expect(frameToBlob({ seq: 1, ts: 0, stream: '', width: 0, height: 0, size: 6, receivedAt: 0, jpeg: '/9j/4AAQ' })?.type).toBe(
      'image/jpeg',
    )
  })

  it('gives the same bytes through the atob fallback and through Uint8Array.fromBase64', async () => {
    const native = vi.fn((text: string) => Uint8Array.from(atob(text), c => c.charCodeAt(0)))
    vi.stubGlobal('Uint8Array', Object.assign(class extends Uint8Array {}, { fromBase64: native }))
    const fresh = await import('./frame')
    vi.unstubAllGlobals()
    expect([...fresh.decodeBase64('/9j/4AAQ')]).toEqual(jpegStart)
    expect(native).toHaveBeenCalledWith('/9j/4AAQ')
  })
})

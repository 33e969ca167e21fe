// Tests of FrameCanvas's decode pipeline with createImageBitmap, the 2D context and requestAnimationFrame stubbed.

import { act, cleanup, render } from '@testing-library/react'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'

import type { Frame } from '../frame'
import { createFrameSlot, type FrameSlot } from '../useFrameStream/frameFeed'
import { FrameCanvas } from './FrameCanvas'

interface FakeBitmap {
  width: number
  height: number
  close: ReturnType<typeof vi.fn>
}

/** Decodes the test controls: each call waits until the test resolves it. */
let decodes: Array<{ resolve: () => void; bitmap: FakeBitmap }>
let animationFrames: Map<number, FrameRequestCallback>
let drawImage: ReturnType<typeof vi.fn>
let slot: FrameSlot

function frame(seq: number): Frame {
  return { stream: 'default', seq, ts: 0, width: 640, height: 480, size: 3, jpeg: '/9j/', receivedAt: 0 }
}

async function resolveDecode(index: number): Promise<void> {
  await act(async () => {
    decodes[index]!.resolve()
    await Promise.resolve()
  })
}

function runAnimationFrames(): void {
  const callbacks = [...animationFrames.values()]
  animationFrames.clear()
  act(() => callbacks.forEach(callback => callback(0)))
}

beforeEach(() => {
  decodes = []
  animationFrames = new Map()
  drawImage = vi.fn()
  slot = createFrameSlot()
  let nextId = 1
  vi.stubGlobal('createImageBitmap', (blob: Blob) => {
    expect(blob.type).toBe('image/jpeg')
    const bitmap: FakeBitmap = { width: 640, height: 480, close: vi.fn() }
    return new Promise(resolve => decodes.push({ resolve: () => resolve(bitmap), bitmap }))
  })
  vi.stubGlobal('requestAnimationFrame', (callback: FrameRequestCallback) => {
    const id = nextId++
    animationFrames.set(id, callback)
    return id
  })
  vi.stubGlobal('cancelAnimationFrame', (id: number) => animationFrames.delete(id))
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue({
    drawImage,
  } as unknown as CanvasRenderingContext2D)
})

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

it('decodes one frame at a time, draws the newest and closes every bitmap', async () => {
  const onDraw = vi.fn()
  const { container } = render(<FrameCanvas frames={slot} onDraw={onDraw} />)

  act(() => {
    slot.offer(frame(1))
  })
  expect(decodes).toHaveLength(1)
  // Frames 2 and 3 arrive while 1 is decoding: 3 replaces 2 in the slot.
  act(() => {
    expect(slot.offer(frame(2))).toBe(false)
    expect(slot.offer(frame(3))).toBe(true)
  })
  expect(decodes).toHaveLength(1)

  await resolveDecode(0) // 1 is ready to draw; 3 starts decoding
  expect(decodes).toHaveLength(2)
  await resolveDecode(1) // 3 is ready before the animation frame: 1 is superseded and closed
  expect(decodes[0]!.bitmap.close).toHaveBeenCalledTimes(1)
  expect(animationFrames.size).toBe(1)

  runAnimationFrames()
  expect(drawImage).toHaveBeenCalledTimes(1)
  expect(drawImage).toHaveBeenCalledWith(decodes[1]!.bitmap, 0, 0)
  expect(decodes[1]!.bitmap.close).toHaveBeenCalledTimes(1)
  expect(onDraw).toHaveBeenCalledWith(expect.objectContaining({ seq: 3 }))
  const canvas = container.querySelector('canvas')!
  expect([canvas.width, canvas.height]).toEqual([640, 480])
})

it('closes the waiting and the decoding bitmap on unmount, and draws nothing after', async () => {
  const { unmount } = render(<FrameCanvas frames={slot} />)
  act(() => {
    slot.offer(frame(1))
  })
  await resolveDecode(0) // waiting for an animation frame
  act(() => {
    slot.offer(frame(2))
  }) // decoding

  unmount()
  expect(decodes[0]!.bitmap.close).toHaveBeenCalledTimes(1)
  expect(animationFrames.size).toBe(0)
  await resolveDecode(1)
  expect(decodes[1]!.bitmap.close).toHaveBeenCalledTimes(1)
  expect(drawImage).not.toHaveBeenCalled()
  expect(slot.offer(frame(3))).toBe(false) // nobody listens any more
  expect(decodes).toHaveLength(2)
})

it('survives StrictMode mounting twice with a single subscription', async () => {
  const { StrictMode } = await import('react')
  render(
    <StrictMode>
      <FrameCanvas frames={slot} />
    </StrictMode>,
  )
  act(() => {
    slot.offer(frame(1))
  })
  expect(decodes).toHaveLength(1)
  await resolveDecode(0)
  runAnimationFrames()
  expect(drawImage).toHaveBeenCalledTimes(1)
})

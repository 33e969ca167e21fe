// Draws a stream's frames into a <canvas>: createImageBitmap decode, one decode in flight, newest frame wins, every bitmap closed.

import { useEffect, useRef, type CanvasHTMLAttributes } from 'react'

import { frameToBlob, type Frame } from '../frame'
import { reportError } from '../reportError'
import type { FrameFeed } from '../useFrameStream'

export interface FrameCanvasProps extends CanvasHTMLAttributes<HTMLCanvasElement> {
  /** Where frames come from: `useFrameStream(...).frames`. */
  frames: FrameFeed
  /** Called after a frame is drawn (once per animation frame at most). Keep it cheap. */
  onDraw?: ((frame: Frame) => void) | undefined
}

/**
 * A canvas showing the newest frame of a stream. The canvas takes the frame's resolution; size it
 * on screen with CSS (for example `width: 100%; height: auto`).
 *
 * Pipeline: the feed holds one waiting frame; this component decodes it with `createImageBitmap`
 * (off the main thread), never more than one at a time, and draws the newest decoded bitmap on the
 * next animation frame. Frames that arrive meanwhile replace each other, so a slow machine shows
 * fewer frames instead of falling behind. Every bitmap is closed after drawing or when superseded,
 * because bitmaps hold native memory that garbage collection frees late.
 */
export function FrameCanvas({ frames, onDraw, ...canvasProps }: FrameCanvasProps) {
  const canvasRef = useRef<HTMLCanvasElement>(null)
  const onDrawRef = useRef(onDraw)
  useEffect(() => {
    onDrawRef.current = onDraw
  })

  useEffect(() => {
    let disposed = false
    let decoding = false
    /** The newest decoded bitmap, waiting for the next animation frame. */
    let ready: { bitmap: ImageBitmap; frame: Frame } | null = null
    let animationFrame: number | null = null

    const draw = () => {
      animationFrame = null
      const next = ready
      ready = null
      if (disposed || next === null) {
        next?.bitmap.close()
        return
      }
      const canvas = canvasRef.current
      const context = canvas?.getContext('2d')
      if (canvas && context) {
        const { bitmap } = next
        // Resizing clears the canvas and reallocates its backing store: only when the resolution changes.
        if (canvas.width !== bitmap.width) canvas.width = bitmap.width
        if (canvas.height !== bitmap.height) canvas.height = bitmap.height
        context.drawImage(bitmap, 0, 0)
      }
      next.bitmap.close()
      try {
        onDrawRef.current?.(next.frame)
      } catch (error) {
        reportError(error)
      }
    }

    const decodeNext = () => {
      if (disposed || decoding) return
      const frame = frames.take()
      if (frame === null) return
      let blob: Blob | null
      try {
        blob = frameToBlob(frame)
      } catch (error) {
        reportError(error)
        return
      }
      if (blob === null) return
      decoding = true
      createImageBitmap(blob).then(
        bitmap => {
          decoding = false
          if (disposed) {
            bitmap.close()
            return
          }
          ready?.bitmap.close()
          ready = { bitmap, frame }
          animationFrame ??= requestAnimationFrame(draw)
          decodeNext()
        },
        (error: unknown) => {
          decoding = false
          reportError(error)
          decodeNext()
        },
      )
    }

    const unsubscribe = frames.subscribe(decodeNext)
    decodeNext()
    return () => {
      if (disposed) return
      disposed = true
      unsubscribe()
      if (animationFrame !== null) cancelAnimationFrame(animationFrame)
      animationFrame = null
      ready?.bitmap.close()
      ready = null
    }
  }, [frames])

  return <canvas ref={canvasRef} {...canvasProps} />
}

// The single-slot hand-off between the stream reader and a renderer: the newest frame waits, older ones are dropped.

import type { Frame } from '../frame'
import { reportError } from '../reportError'

/**
 * Where a renderer picks up frames. There is one slot: a frame that is still waiting when a newer
 * one arrives is dropped (and counted), so a slow renderer always gets the newest frame and memory
 * stays bounded. Meant for one renderer per stream.
 */
export interface FrameFeed {
  /** Calls `listener` whenever a new frame is waiting; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void
  /** Removes and returns the waiting frame, or null. */
  take(): Frame | null
}

/** The writer's side of a {@link FrameFeed}. */
export interface FrameSlot extends FrameFeed {
  /** Puts `frame` in the slot; returns true if it replaced a frame nobody took. */
  offer(frame: Frame): boolean
  /** Empties the slot (the stream changed or closed). */
  clear(): void
}

export function createFrameSlot(): FrameSlot {
  let waiting: Frame | null = null
  const listeners = new Set<() => void>()
  return {
    subscribe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0) waiting = null
      }
    },
    take() {
      const frame = waiting
      waiting = null
      return frame
    },
    offer(frame) {
      // With no renderer there is nobody to drop frames for: keep nothing.
      if (listeners.size === 0) return false
      const replaced = waiting !== null
      waiting = frame
      for (const listener of listeners) {
        try {
          listener()
        } catch (error) {
          reportError(error)
        }
      }
      return replaced
    },
    clear() {
      waiting = null
    },
  }
}

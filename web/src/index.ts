// Public API of the framecast web package: re-exports only.

export { FrameCanvas, type FrameCanvasProps } from './FrameCanvas/FrameCanvas'
export {
  decodeBase64,
  frameToBlob,
  parseFrame,
  parseSourceStatus,
  type Frame,
  type SourceState,
  type SourceStatus,
} from './frame'
export {
  backoffDelay,
  DefaultBackoff,
  DefaultRetryFloorMs,
  DefaultStallTimeoutMs,
  FrameStreamError,
  type BackoffOptions,
  type ConnectionStatus,
  type HeaderRecord,
} from './useFrameStream/connection'
export type { FrameFeed } from './useFrameStream/frameFeed'
export {
  DefaultStatsIntervalMs,
  useFrameStream,
  type FrameStream,
  type FrameStreamStats,
  type UseFrameStreamOptions,
} from './useFrameStream/useFrameStream'

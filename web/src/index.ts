// Public API of the framecast web package: re-exports only.

export { FrameCanvas, type FrameCanvasProps } from './FrameCanvas'
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
  DefaultConnectTimeoutMs,
  DefaultRetryFloorMs,
  DefaultStallTimeoutMs,
  DefaultStatsIntervalMs,
  FrameStreamError,
  useFrameStream,
  type BackoffOptions,
  type ConnectionStatus,
  type FrameFeed,
  type FrameStream,
  type FrameStreamStats,
  type HeaderRecord,
  type UseFrameStreamOptions,
} from './useFrameStream'

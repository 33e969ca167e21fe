// Public entry of the useFrameStream folder: what the package and other components may import from it.

export {
  AuthRetries,
  backoffDelay,
  DefaultBackoff,
  DefaultConnectTimeoutMs,
  DefaultRetryFloorMs,
  DefaultStallTimeoutMs,
  FrameStreamError,
  MinOpenForImmediateReconnectMs,
  type BackoffOptions,
  type ConnectionStatus,
  type HeaderRecord,
} from './connection'
export type { FrameFeed } from './frameFeed'
export {
  DefaultStatsIntervalMs,
  useFrameStream,
  type FrameStream,
  type FrameStreamStats,
  type UseFrameStreamOptions,
} from './useFrameStream'

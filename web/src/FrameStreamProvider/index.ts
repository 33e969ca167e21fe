// Public entry of the FrameStreamProvider folder.

export { FrameStreamProvider, type FrameStreamProviderProps } from './FrameStreamProvider'
export { DefaultMaxStreamsPerConnection, SubscribeBatchMs } from './streamHub'

// Public API of the framecast web package: re-exports only.

export { FrameCanvas, type FrameCanvasProps } from './FrameCanvas'
export * from './FrameStreamProvider'
export {
  decodeBase64,
  frameToBlob,
  parseFrame,
  parseSourceStatus,
  type Frame,
  type SourceState,
  type SourceStatus,
} from './frame'
export * from './useFrameStream'

// Public entry of the FrameCanvas folder.

export { FrameCanvas, type FrameCanvasProps } from './FrameCanvas'

// The wire types of framecast's `/events` stream and the pure code that reads them (JSON and base64).

/** One JPEG frame as sent in an `event: frame` message. */
export interface Frame {
  /** Stream name the frame belongs to. */
  stream: string
  /** Sequence number, from 1 per stream; a gap means frames were skipped for this client. */
  seq: number
  /** Server receive time, milliseconds since the Unix epoch. */
  ts: number
  width: number
  height: number
  /** JPEG size in bytes (before base64). */
  size: number
  /** Standard base64 of the JPEG; absent when the stream was opened with `payload: 'none'`. */
  jpeg?: string
  /** Client receive time (`Date.now()`), added by the hook. */
  receivedAt: number
}

/** What the source behind a stream is doing, from `event: status` messages. */
export type SourceState = 'connecting' | 'live' | 'stalled' | 'offline'

/** The data of an `event: status` message. */
export interface SourceStatus {
  stream: string
  state: SourceState
  reason?: string
}

const SourceStates: ReadonlySet<string> = new Set(['connecting', 'live', 'stalled', 'offline'])

/** A parsed JSON object whose fields `K` are still to be checked. */
type Unchecked<K extends string> = { [key in K]?: unknown }

/** Reads the JSON of a frame event; returns null if it is not a frame. */
export function parseFrame(data: string, receivedAt: number): Frame | null {
  const value: unknown = JSON.parse(data)
  if (typeof value !== 'object' || value === null) return null
  const v = value as Unchecked<'stream' | 'seq' | 'ts' | 'width' | 'height' | 'size' | 'jpeg'>
  if (typeof v.seq !== 'number' || typeof v.ts !== 'number') return null
  const frame: Frame = {
    stream: typeof v.stream === 'string' ? v.stream : '',
    seq: v.seq,
    ts: v.ts,
    width: typeof v.width === 'number' ? v.width : 0,
    height: typeof v.height === 'number' ? v.height : 0,
    size: typeof v.size === 'number' ? v.size : 0,
    receivedAt,
  }
  if (typeof v.jpeg === 'string') frame.jpeg = v.jpeg
  return frame
}

/** Reads the JSON of a status event; returns null if it is not one. */
export function parseSourceStatus(data: string): SourceStatus | null {
  const value: unknown = JSON.parse(data)
  if (typeof value !== 'object' || value === null) return null
  const v = value as Unchecked<'stream' | 'state' | 'reason'>
  if (typeof v.state !== 'string' || !SourceStates.has(v.state)) return null
  const status: SourceStatus = { stream: typeof v.stream === 'string' ? v.stream : '', state: v.state as SourceState }
  if (typeof v.reason === 'string') status.reason = v.reason
  return status
}

type FromBase64 = (base64: string) => Uint8Array<ArrayBuffer>

/** `Uint8Array.fromBase64` where the runtime has it (Chrome 140+, Firefox 133+, Safari 18.2+). */
const nativeFromBase64: FromBase64 | undefined = (
  Uint8Array as unknown as { fromBase64?: FromBase64 }
).fromBase64?.bind(Uint8Array)

/** Decodes standard base64 into bytes, natively when possible. Throws on malformed input. */
export function decodeBase64(base64: string): Uint8Array<ArrayBuffer> {
  if (nativeFromBase64) return nativeFromBase64(base64)
  const binary = atob(base64)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/** The frame's JPEG as a Blob ready for `createImageBitmap`, or null when it carries no payload. */
export function frameToBlob(frame: Frame): Blob | null {
  if (frame.jpeg === undefined) return null
  return new Blob([decodeBase64(frame.jpeg)], { type: 'image/jpeg' })
}

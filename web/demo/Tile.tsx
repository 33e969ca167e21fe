// One camera on the wall: a thumbnail (click to enlarge), its state, fps and delay, and a remove button.

import { FrameCanvas, useFrameStream } from '../src'

/**
 * Thumbnail width asked of the server (`?width=`). framecast does not scale frames yet and ignores
 * the parameter, so until it does the tiles get full frames and CSS scales them down.
 */
export const ThumbnailWidth = 320

interface TileProps {
  server: string
  stream: string
  /** Called on every (re)connect, so a refreshed token is what goes out (see token.ts). */
  getHeaders: () => Promise<Record<string, string>>
  onEnlarge: () => void
  onRemove?: (() => void) | undefined
}

export function Tile({ server, stream, getHeaders, onEnlarge, onRemove }: TileProps) {
  // Under <FrameStreamProvider> the url and getHeaders here are ignored: the provider's apply.
  const live = useFrameStream({ url: `${server}/events`, stream, getHeaders, width: ThumbnailWidth })

  return (
    <section
      className="panel"
      data-testid="panel"
      data-stream={stream}
      data-status={live.status}
      data-fps={live.fps}
      data-received={live.received}
      data-dropped={live.dropped}
      data-delay={live.delayMs ?? ''}
      data-opens={live.opens}
      data-state={live.state ?? ''}
      data-state-reason={live.stateReason ?? ''}
      data-error={live.error?.message ?? ''}
    >
      <div className="bar">
        <strong className="name">{stream}</strong>
        <span className={`state-${live.state ?? 'none'}`}>{live.state ?? '–'}</span>
        {onRemove && (
          <button type="button" onClick={onRemove} aria-label={`remove ${stream}`} data-testid="remove">
            ✕
          </button>
        )}
      </div>
      <button type="button" className="thumb" onClick={onEnlarge} aria-label={`enlarge ${stream}`}>
        <FrameCanvas frames={live.frames} aria-label={`stream ${stream}`} />
      </button>
      <dl>
        <dt>status</dt>
        <dd className={`status-${live.status}`}>{live.status}</dd>
        <dt>fps</dt>
        <dd>{live.fps.toFixed(1)}</dd>
        <dt>delay</dt>
        <dd>{live.delayMs === null ? '–' : `${live.delayMs} ms`}</dd>
        <dt>dropped</dt>
        <dd>{live.dropped}</dd>
      </dl>
      <div className="error">
        {live.error?.message}
        {live.status === 'error' && (
          <>
            {' '}
            <button type="button" onClick={live.reconnect}>
              Retry
            </button>
          </>
        )}
        {live.stateReason && <span className="muted"> {live.stateReason}</span>}
      </div>
    </section>
  )
}

// An enlarged tile: the stream at full size over the wall, closed with Escape, a click outside or the button.

import { useEffect } from 'react'

import { FrameCanvas, useFrameStream } from '../src'

interface FullViewProps {
  server: string
  stream: string
  getHeaders: () => Promise<Record<string, string>>
  onClose: () => void
}

export function FullView({ server, stream, getHeaders, onClose }: FullViewProps) {
  // No `width`: full-size frames. Under the provider that is another group than the thumbnails',
  // so it is a second connection while the view is open (see "Sharing one connection" in the README).
  const live = useFrameStream({ url: `${server}/events`, stream, getHeaders })

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') onClose()
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [onClose])

  return (
    <div className="overlay" onClick={onClose}>
      <figure
        role="dialog"
        aria-label={`${stream}, full size`}
        data-testid="full-view"
        data-stream={stream}
        data-status={live.status}
        data-received={live.received}
        onClick={event => event.stopPropagation()}
      >
        <FrameCanvas frames={live.frames} aria-label={`stream ${stream}, full size`} />
        <figcaption>
          <strong>{stream}</strong> · {live.status} · source {live.state ?? '–'} · {live.fps.toFixed(1)} fps ·{' '}
          {live.delayMs === null ? '–' : `${live.delayMs} ms`} behind · {live.width > 0 ? `${live.width}×${live.height}` : '–'}{' '}
          {live.error && <span className="error">{live.error.message}</span>}
          <button type="button" onClick={onClose}>
            Close
          </button>
        </figcaption>
      </figure>
    </div>
  )
}

// One stream on the demo page: a switchable stream name, its canvas, and the hook's live counters.

import { useState } from 'react'

import { FrameCanvas, useFrameStream } from '../src'

interface StreamPanelProps {
  server: string
  initialStream: string
  /** Called on every (re)connect, so a refreshed token is what goes out (see token.ts). */
  getHeaders: () => Promise<Record<string, string>>
  /** Names offered in the stream picker (from /streams). */
  known: string[]
  onRemove?: (() => void) | undefined
}

export function StreamPanel({ server, initialStream, getHeaders, known, onRemove }: StreamPanelProps) {
  const [stream, setStream] = useState(initialStream)
  const [draft, setDraft] = useState(initialStream)
  const live = useFrameStream({
    url: `${server}/events`,
    stream,
    getHeaders,
  })
  const listId = `streams-${initialStream}`

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
      <form
        className="bar"
        onSubmit={event => {
          event.preventDefault()
          if (/^[A-Za-z0-9_-]{1,64}$/.test(draft)) setStream(draft)
        }}
      >
        <input
          aria-label="stream name"
          list={listId}
          value={draft}
          onChange={event => setDraft(event.target.value)}
        />
        <datalist id={listId}>
          {known.map(name => (
            <option key={name} value={name} />
          ))}
        </datalist>
        <button type="submit">Show</button>
        {onRemove && (
          <button type="button" onClick={onRemove} aria-label="remove panel">
            ✕
          </button>
        )}
      </form>
      <FrameCanvas frames={live.frames} aria-label={`stream ${stream}`} />
      <dl>
        <dt>status</dt>
        <dd className={`status-${live.status}`}>{live.status}</dd>
        <dt>source</dt>
        <dd title={live.stateReason ?? undefined}>
          {live.state ?? '–'}
          {live.stateReason ? ` (${live.stateReason})` : ''}
        </dd>
        <dt>fps</dt>
        <dd>{live.fps.toFixed(1)}</dd>
        <dt>delay</dt>
        <dd>{live.delayMs === null ? '–' : `${live.delayMs} ms`}</dd>
        <dt>received</dt>
        <dd>{live.received}</dd>
        <dt>dropped</dt>
        <dd>{live.dropped}</dd>
        <dt>seq</dt>
        <dd>{live.lastSeq ?? '–'}</dd>
        <dt>size</dt>
        <dd>{live.width > 0 ? `${live.width}×${live.height}` : '–'}</dd>
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

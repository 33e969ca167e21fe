// The server's view of its streams (GET /streams), polled every two seconds, plus the hook that fetches it.

import { useEffect, useState } from 'react'

/** One row of framecast's `GET /streams`. */
export interface StreamInfo {
  name: string
  source: string
  published: number
  rejected: number
  subscribers: number
  skipped: number
  fps: number
  age_ms: number | null
  width: number
  height: number
}

const PollIntervalMs = 2_000

/** Polls `${server}/streams`; returns the rows (null until the first answer) and the last error. */
export function useStreamList(server: string): { streams: StreamInfo[] | null; error: string | null } {
  const [streams, setStreams] = useState<StreamInfo[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    const controller = new AbortController()
    const poll = async () => {
      try {
        const response = await fetch(`${server}/streams`, { signal: controller.signal, cache: 'no-store' })
        if (!response.ok) throw new Error(`GET /streams answered ${response.status}`)
        const body = (await response.json()) as { streams: StreamInfo[] }
        setStreams(body.streams)
        setError(null)
      } catch (caught) {
        if (!controller.signal.aborted) setError(caught instanceof Error ? caught.message : String(caught))
      }
    }
    void poll()
    const timer = setInterval(() => void poll(), PollIntervalMs)
    return () => {
      clearInterval(timer)
      controller.abort()
    }
  }, [server])
  return { streams, error }
}

export function StreamTable({ streams, error }: { streams: StreamInfo[] | null; error: string | null }) {
  if (streams === null) return <p className="muted">{error ?? 'Loading streams…'}</p>
  return (
    <table>
      <thead>
        <tr>
          <th>stream</th>
          <th>source</th>
          <th>fps</th>
          <th>published</th>
          <th>viewers</th>
          <th>skipped</th>
          <th>size</th>
        </tr>
      </thead>
      <tbody>
        {streams.map(s => (
          <tr key={s.name}>
            <td>{s.name}</td>
            <td>{s.source}</td>
            <td>{s.fps.toFixed(1)}</td>
            <td>{s.published}</td>
            <td>{s.subscribers}</td>
            <td>{s.skipped}</td>
            <td>{s.width > 0 ? `${s.width}×${s.height}` : '–'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

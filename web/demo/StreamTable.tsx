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

/** What the page shows of `/streams`: the rows (null until the first answer), the open `/events` connections, the last error. */
export interface StreamList {
  streams: StreamInfo[] | null
  /** framecast's `viewers`: open `/events` connections, however many streams each carries. */
  viewers: number | null
  error: string | null
}

/** Polls `${server}/streams`. */
export function useStreamList(server: string): StreamList {
  const [streams, setStreams] = useState<StreamInfo[] | null>(null)
  const [viewers, setViewers] = useState<number | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    const controller = new AbortController()
    const poll = async () => {
      try {
        const response = await fetch(`${server}/streams`, { signal: controller.signal, cache: 'no-store' })
        if (!response.ok) throw new Error(`GET /streams answered ${response.status}`)
        const body = (await response.json()) as { streams: StreamInfo[]; viewers?: number }
        setStreams(body.streams)
        setViewers(body.viewers ?? null)
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
  return { streams, viewers, error }
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

// The demo page: a camera wall. Every tile shares one connection through <FrameStreamProvider> (`?provider=0`:
// one each), a click enlarges a tile to full size, and the server's stream table sits below.

import { StrictMode, useCallback, useState, type ReactNode } from 'react'
import { createRoot } from 'react-dom/client'

import { FrameStreamProvider } from '../src'
import { readConfig } from './config'
import { FullView } from './FullView'
import { StreamTable, useStreamList } from './StreamTable'
import { Tile } from './Tile'
import { tokenHeaders } from './token'

const config = readConfig(window.location.search)
const getHeaders = tokenHeaders(config)

/** The provider around the wall, or nothing with `?provider=0`. */
function Connection({ children }: { children: ReactNode }) {
  if (!config.shared) return <>{children}</>
  return (
    <FrameStreamProvider url={`${config.server}/events`} getHeaders={getHeaders}>
      {children}
    </FrameStreamProvider>
  )
}

function App() {
  const [tiles, setTiles] = useState(() => config.streams.map((stream, id) => ({ id, stream })))
  const [nextId, setNextId] = useState(config.streams.length)
  const [draft, setDraft] = useState('')
  const [enlarged, setEnlarged] = useState<string | null>(null)
  const closeFullView = useCallback(() => setEnlarged(null), [])
  const list = useStreamList(config.server)
  const known = list.streams?.map(s => s.name) ?? []

  const add = (stream: string) => {
    setTiles(current => [...current, { id: nextId, stream }])
    setNextId(id => id + 1)
  }

  return (
    <>
      <header>
        <h1>framecast</h1>
        <span className="muted">{config.server || window.location.origin}</span>
        <span className="muted" data-testid="summary">
          {tiles.length} {tiles.length === 1 ? 'tile' : 'tiles'} · {config.shared ? 'one shared connection' : 'one connection each'} ·{' '}
          server sees {list.viewers ?? '?'} {list.viewers === 1 ? 'connection' : 'connections'}
        </span>
        <form
          onSubmit={event => {
            event.preventDefault()
            const name = draft.trim() || known[0] || 'default'
            if (/^[A-Za-z0-9_-]{1,64}$/.test(name)) add(name)
            setDraft('')
          }}
        >
          <input aria-label="stream name" placeholder="stream" list="known-streams" value={draft} onChange={event => setDraft(event.target.value)} />
          <datalist id="known-streams">
            {known.map(name => (
              <option key={name} value={name} />
            ))}
          </datalist>
          <button type="submit">Add tile</button>
        </form>
      </header>
      <Connection>
        <main className="wall">
          {tiles.map(tile => (
            <Tile
              key={tile.id}
              server={config.server}
              stream={tile.stream}
              getHeaders={getHeaders}
              onEnlarge={() => setEnlarged(tile.stream)}
              onRemove={tiles.length > 1 ? () => setTiles(current => current.filter(t => t.id !== tile.id)) : undefined}
            />
          ))}
        </main>
        {enlarged !== null && <FullView server={config.server} stream={enlarged} getHeaders={getHeaders} onClose={closeFullView} />}
      </Connection>
      <details open>
        <summary>Streams on the server</summary>
        <StreamTable streams={list.streams} error={list.error} />
      </details>
    </>
  )
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
)

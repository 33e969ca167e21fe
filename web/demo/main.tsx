// The demo page: a grid of stream panels (add, remove, switch) and the server's stream table.

import { StrictMode, useState } from 'react'
import { createRoot } from 'react-dom/client'

import { readConfig } from './config'
import { StreamPanel } from './StreamPanel'
import { StreamTable, useStreamList } from './StreamTable'
import { tokenHeaders } from './token'

const config = readConfig(window.location.search)
const getHeaders = tokenHeaders(config)

function App() {
  const [panels, setPanels] = useState(() => config.streams.map((stream, id) => ({ id, stream })))
  const [nextId, setNextId] = useState(config.streams.length)
  const list = useStreamList(config.server)
  const known = list.streams?.map(s => s.name) ?? []

  return (
    <>
      <header>
        <h1>framecast</h1>
        <span className="muted">{config.server || window.location.origin}</span>
        <button
          type="button"
          onClick={() => {
            setPanels(current => [...current, { id: nextId, stream: known[0] ?? 'default' }])
            setNextId(id => id + 1)
          }}
        >
          Add panel
        </button>
      </header>
      <StreamTable streams={list.streams} error={list.error} />
      <main className="panels">
        {panels.map(panel => (
          <StreamPanel
            key={panel.id}
            server={config.server}
            initialStream={panel.stream}
            getHeaders={getHeaders}
            known={known}
            onRemove={panels.length > 1 ? () => setPanels(current => current.filter(p => p.id !== panel.id)) : undefined}
          />
        ))}
      </main>
    </>
  )
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
)

// The demo's settings, read once from the page's query string.

export interface DemoConfig {
  /** framecast's base URL; empty means this page's origin (the Vite dev proxy, or framecast serving dist/). */
  server: string
  /** Streams to show at start, one tile each. */
  streams: string[]
  /**
   * True (the default): all tiles share one connection through `<FrameStreamProvider>`. `?provider=0`
   * gives each tile its own, as a page without the provider has (six at most per host, see the README).
   */
  shared: boolean
  /** Sent as `Authorization: Bearer <token>` when set. */
  token: string | null
  /** Asked for a fresh token (`{"token": "…"}`) before every connect and reconnect when set; wins over `token`. */
  tokenUrl: string | null
}

/** `?server=http://127.0.0.1:8080&streams=default,door&token=secret`, `…&tokenUrl=http://127.0.0.1:3000/token`, `…&provider=0` */
export function readConfig(search: string): DemoConfig {
  const query = new URLSearchParams(search)
  const streams = (query.get('streams') ?? query.get('stream') ?? 'default')
    .split(',')
    .map(name => name.trim())
    .filter(name => name !== '')
  return {
    server: (query.get('server') ?? '').replace(/\/+$/, ''),
    streams: streams.length > 0 ? streams : ['default'],
    shared: query.get('provider') !== '0',
    token: query.get('token'),
    tokenUrl: query.get('tokenUrl'),
  }
}

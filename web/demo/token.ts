// Where the demo's panels get their Authorization header: a token URL standing in for an app's own
// backend, which mints a short-lived token on each request, or a static token.

import type { DemoConfig } from './config'

/** A token URL that does not answer must not hold a panel in `connecting` for ever. */
const TokenTimeoutMs = 5_000

/** The panels' `getHeaders`: called by the hook before every connect and reconnect. */
export function tokenHeaders({ token, tokenUrl }: DemoConfig): () => Promise<Record<string, string>> {
  return async () => {
    const current = tokenUrl === null ? token : await fetchToken(tokenUrl)
    return current === null ? {} : { Authorization: `Bearer ${current}` }
  }
}

/** A fresh token from `url`, which answers `{"token": "…"}`; a failure shows as the panel's error. */
async function fetchToken(url: string): Promise<string> {
  const response = await fetch(url, { cache: 'no-store', signal: AbortSignal.timeout(TokenTimeoutMs) })
  if (!response.ok) throw new Error(`token URL answered ${response.status}`)
  const { token } = (await response.json()) as { token?: unknown }
  if (typeof token !== 'string') throw new Error('token URL answered without a "token" string')
  return token
}

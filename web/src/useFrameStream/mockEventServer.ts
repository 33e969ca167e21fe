// Test-only stand-in for framecast's /events: an injectable fetch whose streaming responses the test drives chunk by chunk.

/** One request the hook made, with the body the test writes to. */
export interface MockRequest {
  url: string
  headers: Record<string, string>
  /** True once the client aborted this request. */
  readonly aborted: boolean
  /** True while the response body is open and the client has not aborted. */
  readonly live: boolean
  /** Writes raw bytes of the event stream (split anywhere the test likes). */
  push(text: string): void
  /** Ends the body cleanly, as a server shutting down does. */
  end(): void
}

/** A canned non-stream answer for the next request. */
export interface MockAnswer {
  status: number
  headers?: Record<string, string>
  body?: string
}

export interface MockEventServer {
  /** Pass as the hook's `fetch` option. */
  fetch: typeof fetch
  /** Every request made so far, oldest first. */
  requests: MockRequest[]
  /** Requests whose body is still open. */
  live(): MockRequest[]
  /** Queues answers for the next requests; once used up, requests get a 200 event stream. */
  answerNext(...answers: MockAnswer[]): void
  /**
   * Leaves the next `count` requests unanswered until the client aborts them, as the browser does
   * with a request waiting for a free connection. They come before any queued answers.
   */
  holdNext(count: number): void
}

export function createMockEventServer(): MockEventServer {
  const requests: MockRequest[] = []
  const answers: MockAnswer[] = []
  let held = 0
  const encoder = new TextEncoder()

  const fetchMock = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const signal = init?.signal ?? undefined
    if (signal?.aborted) throw new DOMException('aborted before the request', 'AbortError')
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
    const headers = { ...(init?.headers as Record<string, string> | undefined) }
    const hold = held > 0
    if (hold) held -= 1
    const answer = hold ? undefined : answers.shift()

    let body: ReadableStreamDefaultController<Uint8Array> | null = null
    let aborted = false
    let ended = answer !== undefined || hold
    const request: MockRequest = {
      url,
      headers,
      get aborted() {
        return aborted
      },
      get live() {
        return !aborted && !ended
      },
      push(text) {
        if (!ended && !aborted) body?.enqueue(encoder.encode(text))
      },
      end() {
        if (ended || aborted) return
        ended = true
        body?.close()
      },
    }
    requests.push(request)
    signal?.addEventListener(
      'abort',
      () => {
        aborted = true
        try {
          body?.error(new DOMException('request aborted', 'AbortError'))
        } catch {
          // already closed
        }
      },
      { once: true },
    )

    if (hold) {
      return new Promise<Response>((_, reject) => {
        const fail = () => reject(new DOMException('request aborted', 'AbortError'))
        if (signal?.aborted) fail()
        else signal?.addEventListener('abort', fail, { once: true })
      })
    }
    if (answer !== undefined) {
      const bodyless = answer.status === 204 || answer.status === 205 || answer.status === 304
      return new Response(bodyless ? null : (answer.body ?? '{"error":"nope"}'), {
        status: answer.status,
        headers: { 'content-type': 'application/json', ...answer.headers },
      })
    }
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        body = controller
      },
    })
    return new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } })
  }

  return {
    fetch: fetchMock as typeof fetch,
    requests,
    live: () => requests.filter(r => r.live),
    answerNext: (...more) => answers.push(...more),
    holdNext: count => {
      held += count
    },
  }
}

/** The SSE text of one frame event, as framecast writes it. */
export function frameEvent(seq: number, extra: Record<string, unknown> = {}): string {
  const data = { stream: 'default', seq, ts: 1_764_000_000_000 + seq, width: 4, height: 2, size: 3, jpeg: '/9j/', ...extra }
  return `id: ${seq}\nevent: frame\ndata: ${JSON.stringify(data)}\n\n`
}

/** The SSE text of the last event framecast sends before it ends a stream (`reason` as in `token-expired`). */
export function endEvent(reason: string): string {
  return `event: end\ndata: ${JSON.stringify({ reason })}\n\n`
}

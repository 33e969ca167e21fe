// The engine behind <FrameStreamProvider>, with no React in it: which streams the mounted hooks want, grouped by
// what one connection must share (fps, payload, width), one `/events?stream=…&stream=…` connection per group
// (per 64 streams), re-subscribed in batches when the set changes, and every event routed to its stream's hooks.

import type { Frame, SourceStatus } from '../frame'
import { reportError } from '../reportError'
import {
  FrameStreamError,
  openConnection,
  type ConnectionEvents,
  type ConnectionOptions,
  type ConnectionStatus,
} from '../useFrameStream/connection'
import { eventsUrl, isStreamName } from '../useFrameStream/eventsUrl'

/** What one hook asks the hub for. Hooks that differ only in `stream` share a connection. */
export interface StreamRequest {
  stream: string
  fps?: number | undefined
  payload?: 'jpeg' | 'none' | undefined
  width?: number | undefined
}

/** Where the hub delivers one hook's events: a connection's events minus the bad messages, which the hub reports. */
export type StreamSink = Omit<ConnectionEvents, 'onBadMessage'>

/** framecast's default `--max-streams-per-connection`. */
export const DefaultMaxStreamsPerConnection = 64

/**
 * How long the hub waits after a hook subscribes or leaves before it re-subscribes: long enough that a
 * page mounting many tiles (in one render, or a few renders in a row, or StrictMode's mount, unmount
 * and mount) opens one request, short enough not to be seen.
 */
export const SubscribeBatchMs = 10

export interface StreamHubOptions {
  /** framecast's `/events`, absolute or page-relative. */
  url: string
  /** Read each time a connection opens: how to connect (headers, backoff, timeouts, fetch) and how many streams one connection may carry. */
  settings: () => Omit<ConnectionOptions, 'url'> & { maxStreamsPerConnection: number }
  batchMs?: number | undefined
  /** Replaces openConnection (tests). */
  open?: typeof openConnection | undefined
}

export interface StreamHub {
  /** Adds `sink` to `request.stream` in its group; returns the function that removes it. */
  subscribe(request: StreamRequest, sink: StreamSink): () => void
  /** Closes and reopens the connection that carries `request` (for all streams on it). */
  reconnect(request: StreamRequest): void
  /** Opens connections while true; closes them all, keeping the subscriptions, while false. */
  setActive(active: boolean): void
}

/** The group a request belongs to: everything on one connection shares these. */
export function groupKey({ fps, payload, width }: StreamRequest): string {
  return `fps=${fps ?? ''}&payload=${payload === 'none' ? 'none' : ''}&width=${width ?? ''}`
}

/** Splits stream names into connections of at most `max` streams, in name order so the split is stable. */
export function chunkStreams(names: Iterable<string>, max: number): string[][] {
  const sorted = [...names].sort()
  const size = Math.max(1, Math.floor(max))
  const chunks: string[][] = []
  for (let i = 0; i < sorted.length; i += size) chunks.push(sorted.slice(i, i + size))
  return chunks
}

/** One hook's subscription. */
interface Member {
  sink: StreamSink
  /** Subscribed since the last flush: gets the stream's cached state then. */
  fresh: boolean
  /** The last frame it was given, so the newest frame a new connection sends first is not given twice. */
  lastSeq: number | null
  lastTs: number | null
}

/** One stream of a group: its hooks, and its newest frame and source state for hooks that join later. */
interface StreamEntry {
  members: Set<Member>
  frame: Frame | null
  status: SourceStatus | null
}

/** One open connection of a group. */
interface Link {
  /** Its streams, sorted; `id` is them joined. */
  names: ReadonlySet<string>
  id: string
  close: () => void
  status: ConnectionStatus
  error: FrameStreamError | null
  opened: boolean
  /**
   * Streams that were on an open connection this one replaced. Until it opens, their hooks do not
   * hear that it is connecting (their last picture stays and they are as good as open); a failure
   * reaches them as `reconnecting`.
   */
  carried: Set<string>
}

interface Group {
  request: Omit<StreamRequest, 'stream'>
  streams: Map<string, StreamEntry>
  links: Link[]
}

export function createStreamHub(options: StreamHubOptions): StreamHub {
  const open = options.open ?? openConnection
  const batchMs = options.batchMs ?? SubscribeBatchMs
  const groups = new Map<string, Group>()
  let active = false
  let timer: ReturnType<typeof setTimeout> | undefined

  const schedule = () => {
    timer ??= setTimeout(flush, batchMs)
  }

  const deliverFrame = (member: Member, frame: Frame) => {
    if (member.lastSeq === frame.seq && member.lastTs === frame.ts) return
    member.lastSeq = frame.seq
    member.lastTs = frame.ts
    member.sink.onFrame(frame)
  }

  const deliverStatus = (link: Link, name: string, member: Member, status: ConnectionStatus, error: FrameStreamError | null) => {
    if (!link.opened && link.carried.has(name) && status === 'connecting') {
      if (error === null) return
      member.sink.onStatus('reconnecting', error)
      return
    }
    member.sink.onStatus(status, error)
  }

  const openLink = (group: Group, names: string[], carried: Set<string>): Link => {
    const { maxStreamsPerConnection: _, ...connection } = options.settings()
    const link: Link = {
      names: new Set(names),
      id: names.join('&'),
      close: () => {},
      status: 'connecting',
      error: null,
      opened: false,
      carried,
    }
    const membersOf = (name: string) => (link.names.has(name) ? group.streams.get(name) : undefined)
    link.close = open(
      { ...connection, url: eventsUrl(options.url, { streams: names, ...group.request }) },
      {
        onStatus(status, error) {
          link.status = status
          link.error = error
          if (status === 'open') link.opened = true
          for (const name of link.names) {
            for (const member of group.streams.get(name)?.members ?? []) deliverStatus(link, name, member, status, error)
          }
          if (link.opened) link.carried.clear()
        },
        onFrame(frame) {
          const entry = membersOf(frame.stream)
          if (!entry) return
          entry.frame = frame
          for (const member of entry.members) deliverFrame(member, frame)
        },
        onSourceStatus(status) {
          const entry = membersOf(status.stream)
          if (!entry) return
          entry.status = status
          for (const member of entry.members) member.sink.onSourceStatus(status)
        },
        onBadMessage: reportError,
      },
    )
    return link
  }

  /** Brings every group's connections in line with its streams, and catches up the hooks that joined. */
  function flush() {
    timer = undefined
    if (!active) return
    const { maxStreamsPerConnection } = options.settings()
    for (const [key, group] of groups) {
      for (const [name, entry] of group.streams) if (entry.members.size === 0) group.streams.delete(name)
      const wanted = chunkStreams(group.streams.keys(), maxStreamsPerConnection)
      const wantedIds = new Set(wanted.map(names => names.join('&')))
      const kept: Link[] = []
      const wasOpen = new Set<string>()
      for (const link of group.links) {
        if (wantedIds.has(link.id)) {
          kept.push(link)
          continue
        }
        link.close()
        // A connection that failed for good has nothing to keep up appearances for.
        if (link.opened && link.status !== 'error') for (const name of link.names) wasOpen.add(name)
      }
      const keptIds = new Set(kept.map(link => link.id))
      group.links = kept
      for (const names of wanted) {
        if (keptIds.has(names.join('&'))) continue
        group.links.push(openLink(group, names, new Set(names.filter(name => wasOpen.has(name)))))
      }
      if (group.links.length === 0) {
        groups.delete(key)
        continue
      }
      catchUp(group, kept)
    }
  }

  /** Hooks that joined a stream already carried learn its connection's status; all joiners get its cached state. */
  function catchUp(group: Group, kept: Link[]) {
    for (const [name, entry] of group.streams) {
      for (const member of entry.members) {
        if (!member.fresh) continue
        member.fresh = false
        const link = kept.find(l => l.names.has(name))
        if (link) member.sink.onStatus(link.status, link.error)
        if (entry.status) member.sink.onSourceStatus(entry.status)
        if (entry.frame) deliverFrame(member, entry.frame)
      }
    }
  }

  return {
    subscribe(request, sink) {
      if (!isStreamName(request.stream)) {
        // Refused here, so one bad name does not make the server refuse every stream on the connection.
        sink.onStatus(
          'error',
          new FrameStreamError(`invalid stream name ${JSON.stringify(request.stream)}: use 1 to 64 of A-Z a-z 0-9 _ -`, {
            fatal: true,
          }),
        )
        return () => {}
      }
      const key = groupKey(request)
      let group = groups.get(key)
      if (!group) {
        const { fps, payload, width } = request
        group = { request: { fps, payload: payload === 'none' ? 'none' : undefined, width }, streams: new Map(), links: [] }
        groups.set(key, group)
      }
      let entry = group.streams.get(request.stream)
      if (!entry) {
        entry = { members: new Set(), frame: null, status: null }
        group.streams.set(request.stream, entry)
      }
      const member: Member = { sink, fresh: true, lastSeq: null, lastTs: null }
      entry.members.add(member)
      sink.onStatus(active ? 'connecting' : 'closed', null)
      schedule()
      const members = entry.members
      return () => {
        // Emptied streams are dropped at the next flush, so a hook that leaves and comes back in one batch keeps the cache.
        if (members.delete(member)) schedule()
      }
    },

    reconnect(request) {
      const group = groups.get(groupKey(request))
      if (!group) return
      group.links = group.links.filter(link => {
        if (!link.names.has(request.stream)) return true
        link.close()
        return false
      })
      schedule()
    },

    setActive(on) {
      if (on === active) return
      active = on
      if (on) {
        schedule()
        return
      }
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      for (const group of groups.values()) {
        for (const link of group.links) link.close()
        group.links = []
        for (const entry of group.streams.values()) for (const member of entry.members) member.sink.onStatus('closed', null)
      }
    },
  }
}

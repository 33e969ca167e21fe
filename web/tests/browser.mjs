// End-to-end check in headless Chromium: the built demo (dist/) against the real framecast binary, cross-origin.
//
// Starts `framecast --bind 127.0.0.1:0` (test pattern), serves dist/ from a second 127.0.0.1 port, drives
// Debian's Chromium through playwright-core, and checks what a viewer would see: moving pixels, ~30 fps,
// a flat JS heap over a minute, no open subscriber after leaving the page, an Authorization header
// through CORS, reconnection after a server restart, and a page with more streams than the browser has
// connections saying so. Then a camera wall: 16 replayed clips (made with ffmpeg) under one
// <FrameStreamProvider>, all live within 3 s on one connection, every tile moving, a flat heap, and a
// tile removed without the others pausing. Then the same 16 clips over HTTPS (a framecast with
// --tls-cert/--tls-key and a self-signed certificate made with openssl, which a second Chromium accepts by
// its key), every tile on a hook of its own (`?provider=0`): all live within 5 s, 16 viewers on the
// server, and all 16 /events responses HTTP/2 streams of one connection. Then, against a framecast with
// access tokens on (and a tiny token backend in Node): the demo refreshing ~4 s tokens without a visible
// pause, the built-in viewer with and without `?access_token=`, and the demo giving up on a token that
// does not cover its stream. Then MJPEG in plain <img> tags on a page of another origin, against a framecast
// fed solid-colour JPEGs over POST /frames: the pixels (read through a canvas, which CORS allows) follow what
// is pushed, the last frame pushed is on screen within a second with nothing after it, `fps` and `width`
// work, a /snapshot <img> shows the current frame, and Chromium's memory stays flat while an <img> plays the
// 30 fps test pattern. Prints a summary and exits non-zero on failure.
//
// Env: FRAMECAST_BIN (default ../target/release/framecast), CHROMIUM_PATH (default /usr/bin/chromium),
// SOAK_SECONDS (default 60; the single stream and the wall are each watched this long, the MJPEG <img> a third
// of it).

import { spawn } from 'node:child_process'
import { createHash, createHmac, randomBytes, X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { get as httpsGet } from 'node:https'
import { tmpdir } from 'node:os'
import { dirname, extname, join, normalize, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

import { chromium } from 'playwright-core'

const WebDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const DistDir = join(WebDir, 'dist')
const FramecastBin = resolve(WebDir, process.env.FRAMECAST_BIN ?? '../target/release/framecast')
const ChromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** How long the heap is watched while streaming. */
const SoakMs = Number(process.env.SOAK_SECONDS ?? 60) * 1000
/** How long Chromium's memory is watched while an MJPEG <img> plays. */
const ImgSoakMs = SoakMs / 3
/** The whole run, every soak included, must end before this. */
const RunDeadlineMs = 2 * SoakMs + ImgSoakMs + 180_000
/** The test pattern's rate, and how far the measured fps may stray from it. */
const SourceFps = 30
const FpsTolerance = 5
/** Chromium's limit of HTTP/1.1 connections per host, and how many panels the crowded page opens. */
const ConnectionsPerHost = 6
const CrowdedPanels = 8
/** The hook's default connect timeout (DefaultConnectTimeoutMs), plus room for a slow start. */
const ConnectTimeoutWaitMs = 10_000 + 10_000
/** Allowed JS heap growth over the soak, after forced GC. Any per-frame leak at 30 fps is far above this. */
const HeapGrowthLimit = 3 * 1024 * 1024
/** Lifetime of the tokens the demo refreshes, how long it is watched, and the longest pause allowed in it. */
const TokenTtlSeconds = 4
const TokenWatchMs = 15_000
const MaxFrameGapMs = 1_000
/** How often the watched canvas is sampled; the gaps it measures are this coarse. */
const TokenSampleEveryMs = 100
/** The camera wall: how many tiles, the rate of each clip, and how soon all must be live after navigating. */
const WallTiles = 16
const WallFps = 10
const WallLiveWithinMs = 3_000
/** How long the wall is watched after a tile is removed, and how often its canvases are sampled for blanks meanwhile. */
const WallRemovalWatchMs = 3_000
const WallSampleEveryMs = 100
/** The wall over HTTPS, every tile on a hook of its own: how soon all must be live after navigating. */
const H2LiveWithinMs = 5_000
/**
 * MJPEG in <img>: how soon a pushed frame must be on screen when nothing is pushed after it (a server that
 * lets a browser finish a part only when the next frame comes fails this), the colour burst's rate and
 * length, the `fps` and `width` asked for, and the pictures' size.
 */
const ImgShowsWithinMs = 1_000
const ImgBurstFps = 10
const ImgBurstFrames = 20
const ImgSlowFps = 2
const ImgSmallWidth = 160
const ImgWidth = 320
const ImgHeight = 240
/** Allowed growth of Chromium's anonymous memory (all its processes) over the MJPEG soak; keeping every decoded 640x480 frame would be ~1.2 MB a frame. */
const ImgMemoryGrowthLimit = 64 * 1024 * 1024
/** Solid colours pushed as JPEGs; `last` is kept for the frame that nothing follows. */
const ImgColours = {
  red: [220, 30, 30],
  green: [30, 200, 30],
  blue: [30, 30, 220],
  yellow: [230, 220, 40],
  last: [230, 40, 230],
}
const ImgBurstColours = ['red', 'green', 'blue', 'yellow']
const ChromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Results, in order: { name, ok: true | false | null (skipped), detail }. */
const checks = []
/** Numbers worth putting in the README. */
const figures = {}
/** Things to stop at the end, newest first. */
const cleanups = []
const serverLog = []

const sleep = ms => new Promise(done => setTimeout(done, ms))

function log(message) {
  process.stdout.write(`[browser-test] ${message}\n`)
}

function record(name, ok, detail = '') {
  checks.push({ name, ok, detail })
  log(`${ok === null ? 'SKIP' : ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`)
}

/** Polls `probe` until it returns a truthy value; throws after `timeoutMs`. */
async function waitFor(what, timeoutMs, probe, everyMs = 100) {
  const until = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await probe()
      if (last) return last
    } catch (error) {
      last = error
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`)
    await sleep(everyMs)
  }
}

/** Starts framecast and resolves with its base URL once it printed the listening line. */
// A camera URL nobody listens on: the `cam` stream reports itself offline.
const DownCameraUrl = 'http://127.0.0.1:9/video.mjpg'

async function startFramecast(bind = '127.0.0.1:0', extraArgs = []) {
  const args = ['--bind', bind, '--source', `cam=${DownCameraUrl} always-on`, ...extraArgs]
  const child = spawn(FramecastBin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise(done => child.once('exit', (code, signal) => done({ code, signal, at: Date.now() })))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const result = await Promise.race([exited, sleep(3_000).then(() => null)])
      if (result === null) child.kill('SIGKILL')
    }
  }
  cleanups.push(stop)
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', text => {
    serverLog.push(...text.split('\n').filter(Boolean))
    serverLog.splice(0, Math.max(0, serverLog.length - 40))
  })
  child.stdout.setEncoding('utf8')
  let stdout = ''
  const url = await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`framecast printed no listening line within 15 s: ${stdout}`)), 15_000)
    child.once('error', error => {
      clearTimeout(timer)
      fail(new Error(`cannot start ${FramecastBin}: ${error.message} (build it: cd .. && cargo build --release)`))
    })
    child.once('exit', code => {
      clearTimeout(timer)
      fail(new Error(`framecast exited with ${code} before listening`))
    })
    child.stdout.on('data', text => {
      stdout += text
      const match = /framecast listening on (https?:\/\/\S+)/.exec(stdout)
      if (match) {
        clearTimeout(timer)
        done(match[1].replace(/\/+$/, ''))
      }
    })
  })
  return { url, child, exited, stop }
}

const ContentTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
}

/** Pages of the test's own, served next to dist/: a bare page that the MJPEG checks put <img> tags in. */
const TestPages = {
  '/img-check.html': '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>framecast img check</title><body></body>',
}

/** Serves dist/ (and TestPages) on a free 127.0.0.1 port; the page is then cross-origin to framecast. */
async function startStaticServer() {
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)
    if (Object.hasOwn(TestPages, path)) {
      response.writeHead(200, { 'content-type': ContentTypes['.html'], 'cache-control': 'no-store' }).end(TestPages[path])
      return
    }
    const file = normalize(join(DistDir, path.endsWith('/') ? `${path}index.html` : path))
    if (!file.startsWith(DistDir + sep)) {
      response.writeHead(403).end()
      return
    }
    try {
      const body = await readFile(file)
      response.writeHead(200, {
        'content-type': ContentTypes[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      })
      response.end(body)
    } catch {
      response.writeHead(404).end('not found')
    }
  })
  await new Promise(done => server.listen(0, '127.0.0.1', done))
  cleanups.push(() => new Promise(done => server.close(() => done())))
  cleanups.push(async () => server.closeAllConnections?.())
  return `http://127.0.0.1:${server.address().port}`
}

async function streamsOf(framecastUrl) {
  const response = await fetch(`${framecastUrl}/streams`, { signal: AbortSignal.timeout(2_000) })
  if (!response.ok) throw new Error(`GET /streams answered ${response.status}`)
  return (await response.json()).streams
}

async function subscribersOf(framecastUrl, name = 'default') {
  const stream = (await streamsOf(framecastUrl)).find(s => s.name === name)
  return stream ? stream.subscribers : 0
}

/** Every panel's counters, in page order. */
async function panelsOf(page) {
  return page.$$eval('[data-testid=panel]', elements => elements.map(element => ({ ...element.dataset })))
}

/** The first panel's counters, as the demo puts them in data attributes. */
async function panelOf(page) {
  return page.$eval('[data-testid=panel]', element => ({ ...element.dataset }))
}

/** A fingerprint of the canvas pixels and how many distinct grey levels it has (a blank canvas has 1). */
async function canvasSample(page, selector = '[data-testid=panel] canvas') {
  return page.$eval(selector, canvas => {
    const context = canvas.getContext('2d')
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height)
    let hash = 0
    const levels = new Set()
    for (let i = 0; i < data.length; i += 4 * 7) {
      hash = (hash * 31 + data[i] + 3 * data[i + 1] + 7 * data[i + 2]) >>> 0
      levels.add((data[i] + data[i + 1] + data[i + 2]) >> 4)
    }
    return { width: canvas.width, height: canvas.height, hash, levels: levels.size }
  })
}

/** An HS256 access token for framecast, signed with `secret`, that may watch `subscribe` for `ttlSeconds`. */
function mintToken(secret, subscribe, ttlSeconds) {
  const part = value => Buffer.from(JSON.stringify(value)).toString('base64url')
  const claims = { exp: Math.floor(Date.now() / 1000) + ttlSeconds, framecast: { subscribe } }
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`
}

/**
 * An app's backend in miniature, on 127.0.0.1 with CORS for the demo's origin: `/token?ttl=N` mints a
 * token for stream `default`, `/token-for-another-stream` one for a stream the demo does not show.
 * `requests` counts the requests per path.
 */
async function startTokenBackend(secret, pageOrigin) {
  const Grants = { '/token': ['default'], '/token-for-another-stream': ['other'] }
  const requests = {}
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x')
    requests[url.pathname] = (requests[url.pathname] ?? 0) + 1
    const headers = { 'access-control-allow-origin': pageOrigin, 'cache-control': 'no-store' }
    const subscribe = Grants[url.pathname]
    if (subscribe === undefined) {
      response.writeHead(404, headers).end()
      return
    }
    const token = mintToken(secret, subscribe, Number(url.searchParams.get('ttl') ?? 60))
    response.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify({ token }))
  })
  await new Promise(done => server.listen(0, '127.0.0.1', done))
  cleanups.push(() => new Promise(done => server.close(() => done())))
  cleanups.push(async () => server.closeAllConnections?.())
  return { url: `http://127.0.0.1:${server.address().port}`, requests }
}

/** Samples the heap every 10 s for SOAK_SECONDS; returns the samples, the first taken at once. */
async function soakHeap(cdp) {
  const series = [await heapUsed(cdp)]
  log(`soak: watching the JS heap for ${SoakMs / 1000} s (start ${mib(series[0])})`)
  const soakStart = Date.now()
  while (Date.now() - soakStart < SoakMs) {
    await sleep(Math.min(10_000, SoakMs - (Date.now() - soakStart)))
    series.push(await heapUsed(cdp))
  }
  return series
}

async function heapUsed(cdp) {
  await cdp.send('HeapProfiler.collectGarbage')
  await cdp.send('HeapProfiler.collectGarbage')
  const { metrics } = await cdp.send('Performance.getMetrics')
  return metrics.find(m => m.name === 'JSHeapUsedSize').value
}

const mib = bytes => `${(bytes / 1024 / 1024).toFixed(2)} MiB`

async function run() {
  await readFile(join(DistDir, 'index.html')).catch(() => {
    throw new Error('dist/index.html is missing: run `npm run build` first')
  })

  let framecast = await startFramecast()
  log(`framecast at ${framecast.url}`)
  const pageOrigin = await startStaticServer()
  log(`demo at ${pageOrigin}`)

  const browser = await chromium.launch({ executablePath: ChromiumPath, headless: true, args: ChromiumArgs, timeout: 30_000 })
  cleanups.push(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  context.setDefaultTimeout(10_000)
  // Count bitmaps made and closed, so a leak of native memory (which the JS heap does not show) is caught too.
  await context.addInitScript(() => {
    const counts = { created: 0, closed: 0 }
    globalThis.__bitmaps = counts
    const create = globalThis.createImageBitmap.bind(globalThis)
    globalThis.createImageBitmap = (...args) =>
      create(...args).then(bitmap => {
        counts.created += 1
        return bitmap
      })
    const close = ImageBitmap.prototype.close
    ImageBitmap.prototype.close = function () {
      counts.closed += 1
      return close.call(this)
    }
  })
  const pageErrors = []
  context.on('weberror', error => pageErrors.push(String(error.error())))

  // 1. The demo, cross-origin to framecast, shows the test pattern.
  const page = await context.newPage()
  page.on('console', message => {
    if (message.type() === 'error') pageErrors.push(message.text())
  })
  const demoUrl = `${pageOrigin}/?server=${encodeURIComponent(framecast.url)}&streams=default`
  await page.goto(demoUrl)
  await page.waitForSelector('[data-testid=panel][data-status=open]', { timeout: 10_000 })
  await waitFor('10 frames', 10_000, async () => Number((await panelOf(page)).received) >= 10)
  record('demo page opens /events cross-origin', true, demoUrl)

  const live = await panelOf(page)
  record('the panel shows the source state from event: status', live.state === 'live', `state ${JSON.stringify(live.state)}`)

  const first = await waitFor('a drawn canvas', 5_000, async () => {
    const sample = await canvasSample(page)
    return sample.width > 0 && sample.levels > 1 ? sample : null
  })
  const changed = await waitFor('the picture to change', 5_000, async () => {
    const later = await canvasSample(page)
    return later.hash !== first.hash ? later : null
  }).catch(() => null)
  record(
    'canvas shows changing pixels',
    changed !== null,
    `${first.width}x${first.height}, ${first.levels} grey levels, hash ${first.hash} -> ${changed?.hash ?? 'unchanged'}`,
  )

  // 2. fps near the source rate (the hook measures over the last second; take the median of a few readings).
  await sleep(1_500)
  const readings = []
  for (let i = 0; i < 7; i++) {
    readings.push(Number((await panelOf(page)).fps))
    await sleep(400)
  }
  const fps = readings.sort((a, b) => a - b)[3]
  figures.fps = fps
  record('fps is near the source rate', Math.abs(fps - SourceFps) <= FpsTolerance, `median ${fps} of [${readings.join(', ')}]`)

  const one = await subscribersOf(framecast.url)
  record('the page holds exactly one connection', one === 1, `/streams subscribers = ${one}`)

  // 3. JS heap stays flat while streaming.
  const cdp = await context.newCDPSession(page)
  await cdp.send('Performance.enable')
  const before = await panelOf(page)
  const series = await soakHeap(cdp)
  const heapStart = series[0]
  const heapEnd = series.at(-1)
  const after = await panelOf(page)
  const bitmaps = await page.evaluate(() => globalThis.__bitmaps)
  const framesInSoak = Number(after.received) - Number(before.received)
  Object.assign(figures, {
    heapStart,
    heapEnd,
    heapSeries: series.map(mib),
    soakSeconds: SoakMs / 1000,
    framesInSoak,
    droppedInSoak: Number(after.dropped) - Number(before.dropped),
    delayMs: Number(after.delay),
    bitmaps,
  })
  record(
    'JS heap stays flat over the soak',
    heapEnd - heapStart < HeapGrowthLimit,
    `${mib(heapStart)} -> ${mib(heapEnd)} (${series.map(mib).join(', ')})`,
  )
  record(
    'frames kept flowing during the soak',
    framesInSoak >= 0.8 * SourceFps * (SoakMs / 1000),
    `${framesInSoak} frames in ${SoakMs / 1000} s, ${figures.droppedInSoak} dropped`,
  )
  record('every bitmap is closed', bitmaps.created - bitmaps.closed <= 2, `created ${bitmaps.created}, closed ${bitmaps.closed}`)
  await cdp.detach()

  // 4. Leaving the page closes the connection on the server.
  await page.goto('about:blank')
  const leftAt = Date.now()
  const zero = await waitFor('subscribers to return to 0', 5_000, async () => (await subscribersOf(framecast.url)) === 0)
    .then(() => true)
    .catch(() => false)
  record('subscriber count returns to 0 after navigating away', zero, `after ${Date.now() - leftAt} ms`)
  await page.close()

  // 5. Authorization header through CORS (the preflight must allow it).
  const preflight = await fetch(`${framecast.url}/events?stream=default`, {
    method: 'OPTIONS',
    headers: {
      origin: pageOrigin,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization,last-event-id',
    },
    signal: AbortSignal.timeout(2_000),
  })
  const allowHeaders = preflight.headers.get('access-control-allow-headers') ?? ''
  record(
    'CORS preflight allows authorization and last-event-id',
    preflight.ok && /authorization/i.test(allowHeaders) && /last-event-id/i.test(allowHeaders),
    `${preflight.status}, allow-origin ${preflight.headers.get('access-control-allow-origin')}, allow-headers ${allowHeaders}`,
  )
  const authPage = await context.newPage()
  const sentAuth = []
  authPage.on('request', request => {
    if (request.url().includes('/events')) sentAuth.push(request.headers().authorization ?? null)
  })
  await authPage.goto(`${pageOrigin}/?server=${encodeURIComponent(framecast.url)}&streams=default&token=s3cret`)
  const authOk = await waitFor('frames with a token', 10_000, async () => {
    const panel = await panelOf(authPage)
    return panel.status === 'open' && Number(panel.received) > 5
  })
    .then(() => true)
    .catch(() => false)
  record(
    'a cross-origin page with an Authorization header streams',
    authOk && sentAuth.includes('Bearer s3cret'),
    `sent ${JSON.stringify(sentAuth)}, panel ${JSON.stringify(await panelOf(authPage))}`,
  )

  // 6. A camera that is down: the page says so instead of showing nothing.
  const camPage = await context.newPage()
  await camPage.goto(`${pageOrigin}/?server=${encodeURIComponent(framecast.url)}&streams=cam`)
  const down = await waitFor('the camera to be reported offline', 10_000, async () => {
    const panel = await panelOf(camPage)
    return panel.state === 'offline' ? panel : null
  }).catch(error => error)
  record(
    'a camera that is down shows as offline, with the reason',
    !(down instanceof Error) && /refused/.test(down.stateReason),
    down instanceof Error ? down.message : `${down.state}: ${down.stateReason}`,
  )
  await camPage.close()

  // 7. A server restart: framecast ends the body on SIGTERM, exits quickly, and the page reconnects to the new one.
  const port = new URL(framecast.url).port
  const opensBefore = Number((await panelOf(authPage)).opens)
  const signalledAt = Date.now()
  framecast.child.kill('SIGTERM')
  const exit = await Promise.race([framecast.exited, sleep(5_000).then(() => null)])
  figures.shutdownMs = exit ? exit.at - signalledAt : null
  record('framecast exits within 2 s of SIGTERM with a client connected', exit !== null && exit.at - signalledAt <= 2_000, exit ? `${exit.at - signalledAt} ms, ${exit.signal ?? `code ${exit.code}`}` : 'still running after 5 s')
  if (exit === null) framecast.child.kill('SIGKILL')
  try {
    framecast = await startFramecast(`127.0.0.1:${port}`)
  } catch (error) {
    record('the page reconnects after a server restart', null, `could not restart on port ${port}: ${error.message}`)
    framecast = null
  }
  if (framecast) {
    const back = await waitFor('the page to reconnect', 15_000, async () => {
      const panel = await panelOf(authPage)
      return panel.status === 'open' && Number(panel.opens) > opensBefore ? panel : null
    }).catch(error => error)
    record('the page reconnects after a server restart', !(back instanceof Error), back instanceof Error ? back.message : `opens ${opensBefore} -> ${back.opens}`)
  }
  await authPage.close()

  // 8. More streams than connections: six panels stream, the others say why they cannot connect.
  if (framecast) {
    const crowded = await context.newPage()
    const names = Array.from({ length: CrowdedPanels }, () => 'default').join(',')
    // provider=0: one connection per panel, as on a page without <FrameStreamProvider>.
    await crowded.goto(`${pageOrigin}/?server=${encodeURIComponent(framecast.url)}&streams=${names}&provider=0`)
    const panels = await waitFor('the panels without a connection to say so', ConnectTimeoutWaitMs, async () => {
      const all = await panelsOf(crowded)
      const waiting = all.filter(p => p.status === 'connecting' && /no connection after .*six per host/.test(p.error))
      return all.filter(p => p.status === 'open').length === ConnectionsPerHost &&
        waiting.length === CrowdedPanels - ConnectionsPerHost
        ? all
        : null
    }).catch(error => error)
    const subscribers = await subscribersOf(framecast.url)
    record(
      `a page with ${CrowdedPanels} streams: ${ConnectionsPerHost} open, the rest report the connect timeout`,
      !(panels instanceof Error) && subscribers === ConnectionsPerHost,
      panels instanceof Error
        ? `${panels.message}; panels ${JSON.stringify((await panelsOf(crowded)).map(p => [p.status, p.error]))}`
        : `statuses ${panels.map(p => p.status).join(', ')}; /streams subscribers = ${subscribers}; "${panels.at(-1).error}"`,
    )
    await crowded.close()
  } else {
    record(`a page with ${CrowdedPanels} streams reports the connect timeout`, null, 'no framecast after the restart')
  }

  await checkCameraWall(context, pageOrigin, pageErrors)
  await checkHttp2Wall(pageOrigin, pageErrors)
  await checkAccessTokens(context, pageOrigin)
  await checkMjpegImg(browser, context, pageOrigin, pageErrors)

  record('no errors in the page console', pageErrors.length === 0, pageErrors.slice(0, 5).join(' | '))
}

/** Runs a command to its end; rejects with its output if it fails. */
function runCommand(command, args) {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let errors = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', text => (errors += text))
    child.once('error', fail)
    child.once('exit', code => (code === 0 ? done() : fail(new Error(`${command} exited with ${code}: ${errors.trim()}`))))
  })
}

/** Every tile's counters with a fingerprint of its canvas, in page order (see canvasSample). */
async function tilesOf(page) {
  return page.$$eval('[data-testid=panel]', panels =>
    panels.map(panel => {
      const canvas = panel.querySelector('canvas')
      let hash = 0
      const levels = new Set()
      if (canvas.width > 0 && canvas.height > 0) {
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
        for (let i = 0; i < data.length; i += 4 * 7) {
          hash = (hash * 31 + data[i] + 3 * data[i + 1] + 7 * data[i + 2]) >>> 0
          levels.add((data[i] + data[i + 1] + data[i + 2]) >> 4)
        }
      }
      return { ...panel.dataset, width: canvas.width, hash, levels: levels.size, longestGap: canvas.__longestGap ?? null }
    }),
  )
}

/** `/streams` of a framecast: its viewer connections, and each stream's subscribers. Over HTTPS, `ca` is trusted. */
async function viewersOf(framecastUrl, ca = null) {
  const body = ca === null ? await getJson(`${framecastUrl}/streams`) : await getJsonOverTls(`${framecastUrl}/streams`, ca)
  return { viewers: body.viewers, subscribers: Object.fromEntries(body.streams.map(s => [s.name, s.subscribers])) }
}

async function getJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
  if (!response.ok) throw new Error(`GET ${new URL(url).pathname} answered ${response.status}`)
  return response.json()
}

/** GET over HTTPS (HTTP/1.1) trusting only `ca`, on a connection of its own that closes after the answer. */
function getJsonOverTls(url, ca) {
  return new Promise((done, fail) => {
    const request = httpsGet(url, { ca, agent: false, timeout: 2_000 }, response => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', text => (body += text))
      response.on('error', fail)
      response.on('end', () => {
        if (response.statusCode !== 200) fail(new Error(`GET ${new URL(url).pathname} answered ${response.statusCode}`))
        else done(JSON.parse(body))
      })
    })
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)))
    request.on('error', fail)
  })
}

/** Established TCP connections to 127.0.0.1:`port`, counted at their client ends (Linux's /proc/net/tcp). */
async function connectionsTo(port) {
  const table = await readFile('/proc/net/tcp', 'utf8')
  const remote = `0100007F:${Number(port).toString(16).toUpperCase().padStart(4, '0')}`
  return table
    .split('\n')
    .slice(1)
    .map(line => line.trim().split(/\s+/))
    .filter(fields => fields[2] === remote && fields[3] === '01').length
}

let wallClipMade = null
/** The camera wall's clip, made once: 3 s of ffmpeg's testsrc2 as MJPEG at WallFps. */
function wallClip() {
  wallClipMade ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'framecast-wall-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const clip = join(dir, 'clip.mjpeg')
    await runCommand('ffmpeg', [
      '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=${WallFps}`, '-t', '3', '-q:v', '5', '-f', 'mjpeg', clip,
    ])
    return clip
  })()
  return wallClipMade
}

const wallNames = () => Array.from({ length: WallTiles }, (_, i) => `cam${i + 1}`)
/** framecast arguments replaying `clip` as every stream of the wall. */
const wallSources = clip => wallNames().flatMap(name => ['--source', `${name}=${clip} fps=${WallFps}`])

/**
 * A self-signed certificate for localhost and 127.0.0.1 in a temp dir, with the base64 SHA-256 of its
 * public key (what Chromium's --ignore-certificate-errors-spki-list takes).
 */
async function makeCertificate() {
  const dir = await mkdtemp(join(tmpdir(), 'framecast-tls-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  await runCommand('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'extendedKeyUsage=serverAuth', '-keyout', key, '-out', cert,
  ])
  const pem = await readFile(cert, 'utf8')
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })
  return { cert, key, pem, spkiHash: createHash('sha256').update(spki).digest('base64') }
}

/**
 * 9. A camera wall: 16 replayed MJPEG clips on a framecast of their own, shown by the demo under one
 * <FrameStreamProvider>: one connection, all live within 3 s, every tile moving, a flat heap, and a removed
 * tile re-subscribing while the others keep drawing.
 */
async function checkCameraWall(context, pageOrigin, pageErrors) {
  const startedAt = Date.now()
  let clip
  try {
    clip = await wallClip()
  } catch (error) {
    record(`camera wall of ${WallTiles} tiles`, null, `no clip: ${error.message} (install ffmpeg)`)
    return
  }
  const names = wallNames()
  const framecast = await startFramecast('127.0.0.1:0', wallSources(clip))
  log(`camera wall: framecast with ${WallTiles} replayed clips at ${framecast.url}`)

  const page = await context.newPage()
  page.on('console', message => {
    if (message.type() === 'error') pageErrors.push(message.text())
  })
  // The longest time between two pictures drawn on each canvas, since the last reset: exact, unlike sampling.
  await page.addInitScript(() => {
    const drawImage = CanvasRenderingContext2D.prototype.drawImage
    CanvasRenderingContext2D.prototype.drawImage = function (...args) {
      const canvas = this.canvas
      const now = performance.now()
      if (canvas.__lastDraw !== undefined) canvas.__longestGap = Math.max(canvas.__longestGap ?? 0, now - canvas.__lastDraw)
      canvas.__lastDraw = now
      return drawImage.apply(this, args)
    }
    globalThis.__resetDrawGaps = () => {
      for (const canvas of document.querySelectorAll('canvas')) canvas.__longestGap = 0
    }
  })
  const requests = []
  page.on('request', request => {
    if (request.url().includes('/events')) requests.push(new URL(request.url()).searchParams.getAll('stream'))
  })

  // a. All tiles live, on one connection.
  const navigatedAt = Date.now()
  await page.goto(`${pageOrigin}/?server=${encodeURIComponent(framecast.url)}&streams=${names.join(',')}`)
  const live = await waitFor(`all ${WallTiles} tiles to be live`, 10_000, async () => {
    const tiles = await tilesOf(page)
    const ready = tiles.filter(t => t.status === 'open' && t.state === 'live' && t.levels > 1)
    return tiles.length === WallTiles && ready.length === WallTiles ? tiles : null
  }, 50).catch(error => error)
  const liveMs = Date.now() - navigatedAt
  figures.wallLiveMs = liveMs
  if (live instanceof Error) {
    const tiles = await tilesOf(page)
    record(`camera wall: all ${WallTiles} tiles live`, false, `${live.message}; ${JSON.stringify(tiles.map(t => [t.stream, t.status, t.state, t.levels]))}`)
    await page.close()
    await framecast.stop()
    return
  }
  record(
    `camera wall: all ${WallTiles} tiles live within ${WallLiveWithinMs / 1000} s`,
    liveMs <= WallLiveWithinMs,
    `${liveMs} ms from navigation to every tile open, its source live and its canvas drawn`,
  )
  const seen = await viewersOf(framecast.url)
  const subscribed = names.filter(name => seen.subscribers[name] === 1).length
  figures.wallViewers = seen.viewers
  record(
    'camera wall: the server sees one connection for the page',
    seen.viewers === 1 && subscribed === WallTiles && requests.length === 1 && requests[0].length === WallTiles,
    `/streams viewers = ${seen.viewers}, ${subscribed} of ${WallTiles} streams with one subscriber; ` +
      `${requests.length} /events request(s) carrying ${requests.map(r => r.length).join(', ')} streams`,
  )

  // b. Every tile's picture moves.
  const moved = await waitFor('every tile to change', 5_000, async () => {
    const now = await tilesOf(page)
    return now.every((tile, i) => tile.hash !== live[i].hash) ? now : null
  }).catch(() => null)
  const still = moved ? [] : (await tilesOf(page)).filter((tile, i) => tile.hash === live[i].hash).map(t => t.stream)
  record(`camera wall: every tile's pixels change`, moved !== null, moved ? `${WallTiles} of ${WallTiles}` : `unchanged: ${still.join(', ')}`)

  // c. The heap stays flat with every tile streaming.
  const cdp = await context.newCDPSession(page)
  await cdp.send('Performance.enable')
  const receivedOf = tiles => tiles.reduce((sum, t) => sum + Number(t.received), 0)
  const before = receivedOf(await tilesOf(page))
  const series = await soakHeap(cdp)
  const frames = receivedOf(await tilesOf(page)) - before
  const bitmaps = await page.evaluate(() => globalThis.__bitmaps)
  await cdp.detach()
  Object.assign(figures, { wallHeapStart: series[0], wallHeapEnd: series.at(-1), wallFramesInSoak: frames, wallBitmaps: bitmaps })
  record(
    'camera wall: JS heap stays flat over the soak',
    series.at(-1) - series[0] < HeapGrowthLimit,
    `${mib(series[0])} -> ${mib(series.at(-1))} (${series.map(mib).join(', ')})`,
  )
  record(
    'camera wall: frames kept flowing to every tile during the soak',
    frames >= 0.8 * WallTiles * WallFps * (SoakMs / 1000) && bitmaps.created - bitmaps.closed <= 2 * WallTiles,
    `${frames} frames in ${SoakMs / 1000} s over ${WallTiles} tiles; bitmaps created ${bitmaps.created}, closed ${bitmaps.closed}`,
  )

  // d. Removing a tile re-subscribes once, and the others keep drawing meanwhile.
  const removed = names[4]
  const requestsBefore = requests.length
  // Sampling the canvases from here catches blanks and statuses; the pauses come from the page (drawImage),
  // since the click itself takes long enough to hide or fake one.
  let last = []
  const statuses = new Set()
  let blank = 0
  await page.evaluate(() => globalThis.__resetDrawGaps())
  await page.click(`[data-testid=panel][data-stream=${removed}] [data-testid=remove]`)
  const watchStart = Date.now()
  while (Date.now() - watchStart < WallRemovalWatchMs) {
    await sleep(WallSampleEveryMs)
    last = await tilesOf(page)
    for (const tile of last) {
      statuses.add(tile.status)
      if (tile.levels <= 1) blank += 1
    }
  }
  const after = await waitFor(`${removed} to lose its subscriber`, 3_000, async () => {
    const now = await viewersOf(framecast.url)
    return now.subscribers[removed] === 0 ? now : null
  }).catch(() => viewersOf(framecast.url))
  const resubscribed = requests.slice(requestsBefore)
  const longestGap = Math.round(Math.max(...last.map(tile => tile.longestGap ?? Infinity)))
  figures.wallRemovalGapMs = longestGap
  record(
    'camera wall: removing a tile re-subscribes once, on one connection',
    last.length === WallTiles - 1 &&
      resubscribed.length === 1 &&
      resubscribed[0].length === WallTiles - 1 &&
      !resubscribed[0].includes(removed) &&
      after.viewers === 1 &&
      after.subscribers[removed] === 0,
    `${resubscribed.length} new /events request(s) carrying ${resubscribed.map(r => r.length).join(', ')} streams; ` +
      `/streams viewers = ${after.viewers}, ${removed} subscribers = ${after.subscribers[removed]}`,
  )
  record(
    'camera wall: the other tiles keep drawing while it re-subscribes (no blank, no pause)',
    blank === 0 && longestGap <= MaxFrameGapMs && statuses.size === 1 && statuses.has('open'),
    `longest gap between two pictures on a tile ${longestGap} ms over ${WallRemovalWatchMs / 1000} s; ` +
      `${blank} blank canvases and statuses ${[...statuses].join(', ')} in samples every ~${WallSampleEveryMs} ms`,
  )

  // e. Enlarging a tile: full-size frames are another group (no width), so another connection while it is open.
  await page.click(`[aria-label="enlarge ${names[0]}"]`)
  const full = await waitFor('the full-size view to draw', 5_000, async () => {
    const view = await page.$eval('[data-testid=full-view]', element => ({ ...element.dataset }))
    return view.status === 'open' && Number(view.received) > 0 ? view : null
  }).catch(error => error)
  const whileOpen = await viewersOf(framecast.url)
  await page.keyboard.press('Escape')
  const closed = await waitFor('the full-size connection to close', 3_000, async () => {
    const now = await viewersOf(framecast.url)
    return now.viewers === 1 ? now : null
  }).catch(error => error)
  record(
    'camera wall: a click enlarges a tile on a connection of its own, Escape closes it',
    !(full instanceof Error) && whileOpen.viewers === 2 && !(closed instanceof Error),
    full instanceof Error ? full.message : `viewers ${whileOpen.viewers} while enlarged, ${closed instanceof Error ? closed.message : '1 after'}`,
  )

  await page.close()
  await framecast.stop()
  figures.wallChecksSeconds = (Date.now() - startedAt) / 1000
}

/**
 * 10. The wall over HTTPS: a framecast with --tls-cert and --tls-key replaying the same 16 clips, and the demo
 * (still plain HTTP, cross-origin) with every tile on a hook of its own (`?provider=0`). Over HTTP/1.1 six
 * would stream and ten wait; over HTTP/2 all 16 requests are streams of one connection, so all are live.
 * A browser of its own, told to accept this certificate's key and no other.
 */
async function checkHttp2Wall(pageOrigin, pageErrors) {
  const startedAt = Date.now()
  const name = `HTTPS: ${WallTiles} tiles, each on its own hook, all live over HTTP/2`
  let clip
  let tls
  try {
    clip = await wallClip()
    tls = await makeCertificate()
  } catch (error) {
    record(name, null, `${error.message} (install ffmpeg and openssl)`)
    return
  }
  const names = wallNames()
  const framecast = await startFramecast('127.0.0.1:0', ['--tls-cert', tls.cert, '--tls-key', tls.key, ...wallSources(clip)])
  // framecast prints its address as http:// whatever it serves.
  const url = framecast.url.replace(/^https?:/, 'https:')
  const port = new URL(url).port
  log(`HTTPS wall: framecast with ${WallTiles} replayed clips at ${url}`)

  const browser = await chromium.launch({
    executablePath: ChromiumPath,
    headless: true,
    // Honoured because playwright passes --user-data-dir; a certificate with any other key is still refused.
    args: [...ChromiumArgs, `--ignore-certificate-errors-spki-list=${tls.spkiHash}`],
    timeout: 30_000,
  })
  const closeBrowser = () => browser.close()
  cleanups.push(closeBrowser)
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  context.setDefaultTimeout(10_000)
  context.on('weberror', error => pageErrors.push(String(error.error())))
  const page = await context.newPage()
  page.on('console', message => {
    if (message.type() === 'error') pageErrors.push(message.text())
  })
  // How Chromium fetched each /events response: protocol, connection and TLS, from the DevTools protocol.
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  const answers = []
  cdp.on('Network.responseReceived', ({ type, response }) => {
    if (type !== 'Preflight' && new URL(response.url).pathname === '/events') {
      answers.push({
        status: response.status,
        protocol: response.protocol,
        connection: response.connectionId,
        tls: response.securityDetails?.protocol,
        security: response.securityState,
      })
    }
  })

  const navigatedAt = Date.now()
  await page.goto(`${pageOrigin}/?server=${encodeURIComponent(url)}&streams=${names.join(',')}&provider=0`)
  const live = await waitFor(`all ${WallTiles} tiles to be live over HTTPS`, 10_000, async () => {
    const tiles = await tilesOf(page)
    const ready = tiles.filter(t => t.status === 'open' && t.state === 'live' && t.levels > 1)
    return tiles.length === WallTiles && ready.length === WallTiles ? tiles : null
  }, 50).catch(error => error)
  const liveMs = Date.now() - navigatedAt
  if (live instanceof Error) {
    const tiles = await tilesOf(page)
    record(name, false, `${live.message}; ${JSON.stringify(tiles.map(t => [t.stream, t.status, t.state, t.levels, t.error]))}`)
  } else {
    record(
      `${name} within ${H2LiveWithinMs / 1000} s`,
      liveMs <= H2LiveWithinMs,
      `${liveMs} ms from navigating ${new URL(pageOrigin).protocol}// to every tile open on ${new URL(url).protocol}//, live and drawn`,
    )
  }

  // Counted before asking /streams, whose own connection would be counted too while it closes.
  // Chromium now and then opens a spare socket it sends nothing on (one CI run saw 2); framecast
  // closes such a socket after its 10 s head timeout, so count again until then.
  let tcp = await connectionsTo(port).catch(() => null)
  for (const until = Date.now() + 11_000; tcp !== null && tcp > 1 && Date.now() < until;) {
    await new Promise(resolve => setTimeout(resolve, 250))
    tcp = await connectionsTo(port).catch(() => null)
  }
  const seen = await viewersOf(url, tls.pem).catch(error => error)
  const protocols = [...new Set(answers.map(a => a.protocol))]
  const connections = new Set(answers.map(a => a.connection))
  const subscribed = seen instanceof Error ? 0 : names.filter(stream => seen.subscribers[stream] === 1).length
  Object.assign(figures, {
    h2LiveMs: liveMs,
    h2Protocols: protocols,
    h2Connections: connections.size,
    h2TcpConnections: tcp,
    h2Viewers: seen instanceof Error ? null : seen.viewers,
    h2Tls: [...new Set(answers.map(a => `${a.tls} (${a.security})`))].join(', '),
  })
  record(
    `HTTPS: ${WallTiles} /events requests, ${WallTiles} viewers on the server, all HTTP/2 streams of one connection`,
    !(seen instanceof Error) &&
      seen.viewers === WallTiles &&
      subscribed === WallTiles &&
      answers.length === WallTiles &&
      answers.every(a => a.status === 200 && a.protocol === 'h2') &&
      connections.size === 1 &&
      (tcp === null || tcp === 1),
    `${answers.length} /events responses, protocol ${protocols.join(', ') || 'none'}, on ${connections.size} connection(s) ` +
      `(Chromium's connectionId), ${tcp ?? '?'} established TCP connection(s) to the port; ` +
      (seen instanceof Error ? seen.message : `/streams viewers = ${seen.viewers}, ${subscribed} of ${WallTiles} streams with one subscriber`) +
      `; TLS ${figures.h2Tls || '?'}`,
  )

  await cdp.detach().catch(() => {})
  await browser.close()
  cleanups.splice(cleanups.indexOf(closeBrowser), 1)
  await framecast.stop()
  figures.h2ChecksSeconds = (Date.now() - startedAt) / 1000
}

/** 11. A second framecast with access tokens on, and a token backend standing in for the app's. */
async function checkAccessTokens(context, pageOrigin) {
  const startedAt = Date.now()
  const secret = randomBytes(32).toString('hex')
  const framecast = await startFramecast('127.0.0.1:0', ['--jwt-secret', secret])
  const backend = await startTokenBackend(secret, pageOrigin)
  log(`framecast with access tokens at ${framecast.url}, token backend at ${backend.url}`)
  const demoWith = tokenUrl =>
    `${pageOrigin}/?server=${encodeURIComponent(framecast.url)}&streams=default&tokenUrl=${encodeURIComponent(tokenUrl)}`

  await checkTokenRefresh(context, backend, demoWith(`${backend.url}/token?ttl=${TokenTtlSeconds}`))
  await checkViewerToken(context, framecast.url, secret)
  await checkRefusedToken(context, backend, demoWith(`${backend.url}/token-for-another-stream`))

  await framecast.stop()
  figures.tokenChecksSeconds = (Date.now() - startedAt) / 1000
}

/** a. The demo fetches a fresh token for every reconnect, and the picture goes on across them. */
async function checkTokenRefresh(context, backend, demoUrl) {
  const page = await context.newPage()
  // When each frame was decoded, in the page: finer than sampling the canvas from here.
  await page.addInitScript(() => {
    const decodes = { count: 0, last: null, longestGap: 0 }
    globalThis.__decodes = decodes
    const create = globalThis.createImageBitmap.bind(globalThis)
    globalThis.createImageBitmap = (...args) =>
      create(...args).then(bitmap => {
        const now = performance.now()
        if (decodes.last !== null) decodes.longestGap = Math.max(decodes.longestGap, now - decodes.last)
        decodes.last = now
        decodes.count += 1
        return bitmap
      })
  })
  const sent = []
  page.on('request', request => {
    if (request.url().includes('/events') && request.method() === 'GET') sent.push(request.headers().authorization)
  })
  await page.goto(demoUrl)
  const first = await waitFor('a first frame with a token', 10_000, async () => {
    const sample = await canvasSample(page)
    return sample.levels > 1 ? sample : null
  }).catch(error => error)
  if (first instanceof Error) {
    record('demo with expiring tokens shows the stream', false, `${first.message}; panel ${JSON.stringify(await panelOf(page))}`)
    await page.close()
    return
  }

  // Watch as a viewer would: how long the picture ever stays still, and whether it blanks or gives up.
  const tokensBefore = backend.requests['/token'] ?? 0
  const opensBefore = Number((await panelOf(page)).opens)
  const sentBefore = sent.length
  await page.evaluate(() => {
    globalThis.__decodes.longestGap = 0
  })
  const watchStart = Date.now()
  let last = first
  let lastChangeAt = watchStart
  let longestStill = 0
  let blank = 0
  let samples = 0
  let fatal = null
  const statuses = new Set()
  while (Date.now() - watchStart < TokenWatchMs) {
    await sleep(TokenSampleEveryMs)
    const [sample, panel] = await Promise.all([canvasSample(page), panelOf(page)])
    const now = Date.now()
    samples += 1
    statuses.add(panel.status)
    if (panel.status === 'error') fatal ??= panel.error
    if (sample.levels <= 1) blank += 1
    if (sample.hash !== last.hash) {
      longestStill = Math.max(longestStill, now - lastChangeAt)
      lastChangeAt = now
      last = sample
    }
  }
  longestStill = Math.max(longestStill, Date.now() - lastChangeAt)
  const decodes = await page.evaluate(() => globalThis.__decodes)
  const panel = await panelOf(page)
  const tokens = (backend.requests['/token'] ?? 0) - tokensBefore
  const opens = Number(panel.opens) - opensBefore
  const sentInWatch = sent.slice(sentBefore)
  const distinct = new Set(sent).size === sent.length && sent.every(header => /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/.test(header))
  Object.assign(figures, { tokenStillMs: longestStill, tokenDecodeGapMs: Math.round(decodes.longestGap), tokensFetched: tokens })

  record(
    `demo with ${TokenTtlSeconds} s tokens: a fresh token for every reconnect`,
    tokens >= 3 && opens >= 3 && sentInWatch.length >= 3 && distinct,
    `${tokens} tokens fetched, ${sentInWatch.length} /events requests and ${opens} opens in ${TokenWatchMs / 1000} s; ` +
      `${new Set(sent).size} distinct bearer tokens in ${sent.length} requests`,
  )
  record(
    `demo with ${TokenTtlSeconds} s tokens: the picture never stops for more than ${MaxFrameGapMs} ms`,
    longestStill <= MaxFrameGapMs && decodes.longestGap <= MaxFrameGapMs && blank === 0,
    `canvas unchanged for at most ${longestStill} ms (${samples} samples), longest gap between decoded frames ` +
      `${Math.round(decodes.longestGap)} ms, ${blank} blank samples`,
  )
  record(
    `demo with ${TokenTtlSeconds} s tokens: no fatal error`,
    // Not `open` at the end: the last sample may fall in the moment of a reconnect.
    fatal === null && panel.status !== 'error',
    `statuses seen ${[...statuses].join(', ')}; now ${panel.status}${fatal ? `; fatal: ${fatal}` : ''}`,
  )
  await page.close()
}

/** b. framecast's own viewer page takes `?access_token=`; without one a viewer sees it is not live. */
async function checkViewerToken(context, framecastUrl, secret) {
  const page = await context.newPage()
  await page.goto(`${framecastUrl}/?access_token=${mintToken(secret, ['default'], 60)}`)
  const first = await waitFor('the viewer to draw', 10_000, async () => {
    const sample = await canvasSample(page, '#picture')
    return sample.levels > 1 ? sample : null
  }).catch(error => error)
  let changed = null
  if (!(first instanceof Error)) {
    changed = await waitFor('the viewer picture to change', 5_000, async () => {
      const later = await canvasSample(page, '#picture')
      return later.hash !== first.hash ? later : null
    }).catch(() => null)
  }
  const state = await page.$eval('#state', element => element.textContent)
  record(
    'viewer page with ?access_token= shows changing pixels',
    changed !== null && state === 'live',
    first instanceof Error ? first.message : `hash ${first.hash} -> ${changed?.hash ?? 'unchanged'}, state "${state}"`,
  )

  const answers = []
  page.on('response', response => {
    if (response.url().includes('/events')) answers.push(response.status())
  })
  await page.goto(`${framecastUrl}/`)
  const down = await waitFor('the viewer to say a token is needed', 5_000, async () => {
    const shown = await page.$eval('#state', element => ({ text: element.textContent, kind: element.className }))
    return shown.kind === 'down' && shown.text.includes('access token') ? shown : null
  }).catch(error => error)
  const blank = (await canvasSample(page, '#picture')).levels <= 1
  record(
    'viewer page without a token: /events refused, the page says a token is needed',
    !(down instanceof Error) && answers.includes(401) && blank,
    `/events answered ${answers.join(', ') || 'nothing'}; ` +
      (down instanceof Error ? down.message : `state "${down.text}" (${down.kind}), canvas ${blank ? 'blank' : 'drawn'}`),
  )
  await page.close()
}

/** c. A backend whose tokens never cover the stream: the panel gives up after AuthRetries (2) retries. */
async function checkRefusedToken(context, backend, demoUrl) {
  const page = await context.newPage()
  await page.goto(demoUrl)
  const stopped = await waitFor('the panel to give up', 15_000, async () => {
    const panel = await panelOf(page)
    return panel.status === 'error' ? panel : null
  }).catch(error => error)
  // A fourth attempt would come one backoff step (retry: 2 s, plus up to 0.5 s) after the third.
  await sleep(3_000)
  const asked = backend.requests['/token-for-another-stream'] ?? 0
  const shown = await page.$eval('[data-testid=panel]', element => ({
    status: element.querySelector('dd[class^=status-]')?.textContent,
    error: element.querySelector('.error')?.textContent,
  }))
  const retry = await page.getByRole('button', { name: 'Retry' }).isVisible()
  record(
    'demo with a token for another stream: fatal after 2 retries, says so',
    !(stopped instanceof Error) && asked === 3 && shown.status === 'error' && /not authorized \(403\)/.test(shown.error) && retry,
    `${asked} tokens fetched; shows status "${shown.status}", "${shown.error}"` +
      (stopped instanceof Error ? `; ${stopped.message}` : ''),
  )
  await page.close()
}

/**
 * 12. MJPEG in <img> tags, on a page of another origin, against a framecast of its own fed solid-colour JPEGs
 * over POST /frames. Every <img> has crossorigin="anonymous", so its pixels can be read through a canvas (a
 * tainted canvas would be a CORS finding). A watcher in the page draws every <img> on each animation frame and
 * logs when its picture changes; the checks read that log.
 */
async function checkMjpegImg(browser, context, pageOrigin, pageErrors) {
  const startedAt = Date.now()
  const framecast = await startFramecast()
  const stream = 'img-check'
  log(`MJPEG <img>: framecast at ${framecast.url}, stream ${stream}`)
  const page = await context.newPage()
  page.on('console', message => {
    if (message.type() === 'error') pageErrors.push(message.text())
  })
  await page.goto(`${pageOrigin}/img-check.html`)
  await page.evaluate(watchImages)
  const jpegs = await solidJpegs(page)
  const push = colour => pushJpeg(framecast.url, stream, jpegs[colour])
  const mjpeg = `${framecast.url}/mjpeg?stream=${stream}`
  const seenBy = id => page.evaluate(id => globalThis.__imgSeen[id] ?? null, id)

  // a. Three <img> on one stream: at full rate, at `fps`, and at `width`; then a burst of colours.
  const first = ImgBurstColours.at(-1)
  await push(first)
  await addImages(page, { live: mjpeg, slow: `${mjpeg}&fps=${ImgSlowFps}`, small: `${mjpeg}&width=${ImgSmallWidth}` })
  const connected = await waitFor('the three <img> to connect', 5_000, async () => (await subscribersOf(framecast.url, stream)) === 3)
    .then(() => true)
    .catch(() => false)
  const pushed = [first]
  const burstStart = Date.now()
  for (let i = 0; i < ImgBurstFrames; i++) {
    const colour = ImgBurstColours[i % ImgBurstColours.length]
    await push(colour)
    pushed.push(colour)
    await sleep(Math.max(0, burstStart + ((i + 1) * 1000) / ImgBurstFps - Date.now()))
  }
  const burstMs = Date.now() - burstStart
  await sleep(300)
  const [live, slow, small] = await Promise.all(['live', 'slow', 'small'].map(seenBy))
  const during = seen => colourRun(seen, burstStart, burstStart + burstMs + 300)
  const liveShown = burstShown(during(live), pushed)
  record(
    'MJPEG <img> on another origin: its pixels follow the colours pushed',
    connected && live?.error === null && live.width === ImgWidth && live.height === ImgHeight && liveShown >= 0.5 * ImgBurstFrames,
    (connected ? '' : `not all three <img> connected within 5 s; `) +
      `${describeImage(live)}; showed ${describeRun(during(live), pushed)} in ${burstMs} ms`,
  )
  // Counted as changes of picture: at this pace a colour comes back every few frames, so which frame each was is not known.
  const slowRun = during(slow)
  const slowMost = Math.ceil((burstMs / 1000) * ImgSlowFps) + 1
  record(
    `MJPEG <img> with ?fps=${ImgSlowFps}: about ${ImgSlowFps} pictures a second`,
    slow?.error === null && slowRun.length >= 2 && slowRun.length <= slowMost && matchRun(slowRun, pushed) !== null,
    `${describeImage(slow)}; ${slowRun.length} pictures (${slowRun.join(' ')}) while ${ImgBurstFrames} frames came in ` +
      `${burstMs} ms; at most ${slowMost} allowed`,
  )
  const smallShown = burstShown(during(small), pushed)
  record(
    `MJPEG <img> with ?width=${ImgSmallWidth}: naturalWidth ${ImgSmallWidth}, pictures follow`,
    small?.error === null && small.width === ImgSmallWidth && smallShown >= 0.5 * ImgBurstFrames,
    `${describeImage(small)}; showed ${describeRun(during(small), pushed)}`,
  )

  // b. The last frame, with nothing pushed after it, on the open <img> and on one opened after the push.
  const lastPushedAt = Date.now()
  await push('last')
  // Another query string, or Chromium would give it the open <img>'s picture from its memory cache.
  await addImages(page, { fresh: `${mjpeg}&fresh` })
  const shownAt = seen => seen?.changes.find(change => change.at >= lastPushedAt && nearestColour(change.rgb) === 'last')?.at
  const shown = await waitFor('the last colour on both <img>', ImgShowsWithinMs, async () => {
    const both = await Promise.all([seenBy('live'), seenBy('fresh')])
    return both.every(seen => shownAt(seen) !== undefined) ? both : null
  }, 20).catch(() => null)
  const [liveAfter, freshAfter] = shown ?? (await Promise.all([seenBy('live'), seenBy('fresh')]))
  const delay = seen => {
    const at = shownAt(seen)
    return at === undefined ? `not within ${ImgShowsWithinMs} ms, shows ${showing(seen)}` : `${at - lastPushedAt} ms`
  }
  Object.assign(figures, {
    imgLastMs: shownAt(liveAfter) === undefined ? null : shownAt(liveAfter) - lastPushedAt,
    imgFreshMs: shownAt(freshAfter) === undefined ? null : shownAt(freshAfter) - lastPushedAt,
  })
  record(
    `MJPEG <img>: the last frame pushed is on screen within ${ImgShowsWithinMs} ms with nothing after it`,
    shown !== null,
    `from the POST to the picture: open <img> ${delay(liveAfter)}; <img> opened after the POST ${delay(freshAfter)}`,
  )

  // c. A snapshot <img> shows the current frame.
  const snapshot = await page
    .evaluate(async src => {
      const image = new Image()
      image.crossOrigin = 'anonymous'
      image.id = 'snapshot'
      image.src = src
      document.body.append(image)
      await image.decode()
    }, `${framecast.url}/snapshot?stream=${stream}`)
    .then(() => waitFor('the snapshot to be drawn', 2_000, async () => {
      const seen = await seenBy('snapshot')
      return seen?.changes.length > 0 ? seen : null
    }))
    .catch(error => error)
  record(
    'snapshot <img> on another origin shows the current frame',
    !(snapshot instanceof Error) && snapshot.error === null && showing(snapshot) === 'last' && snapshot.width === ImgWidth,
    snapshot instanceof Error ? snapshot.message : `${describeImage(snapshot)}, shows ${showing(snapshot)}`,
  )

  // d. Clearing the src of an <img> closes its connection at once (taking it out of the page alone does not).
  const openBefore = await subscribersOf(framecast.url, stream)
  const clearedAt = Date.now()
  await page.evaluate(() => {
    for (const image of [...document.images]) {
      image.src = ''
      image.remove()
    }
  })
  const closedMs = await waitFor('the <img> connections to close', 2_000, async () => (await subscribersOf(framecast.url, stream)) === 0, 20)
    .then(() => Date.now() - clearedAt)
    .catch(() => null)
  record(
    "clearing an MJPEG <img>'s src closes its connection",
    openBefore === 4 && closedMs !== null,
    `${openBefore} /mjpeg connections on the stream -> ` +
      (closedMs === null ? `${await subscribersOf(framecast.url, stream)} still open after 2 s` : `0 after ${closedMs} ms`),
  )

  // e. Chromium's memory while an <img> plays the 30 fps test pattern.
  await addImages(page, { pattern: `${framecast.url}/mjpeg?stream=default` })
  const playing = await waitFor('the test pattern to play', 5_000, async () => ((await seenBy('pattern'))?.changes.length ?? 0) >= SourceFps).catch(error => error)
  if (playing instanceof Error) {
    record('MJPEG <img>: memory stays flat while it plays', false, playing.message)
  } else {
    const pageCdp = await context.newCDPSession(page)
    const browserCdp = await browser.newBrowserCDPSession()
    const memory = async () => {
      await pageCdp.send('HeapProfiler.collectGarbage')
      return chromiumMemory(browserCdp)
    }
    const framesBefore = (await seenBy('pattern')).changes.length
    const series = [await memory()]
    log(`MJPEG <img>: watching Chromium's memory for ${ImgSoakMs / 1000} s (start ${mib(series[0])})`)
    const soakStart = Date.now()
    while (Date.now() - soakStart < ImgSoakMs) {
      await sleep(Math.min(5_000, ImgSoakMs - (Date.now() - soakStart)))
      series.push(await memory())
    }
    const frames = (await seenBy('pattern')).changes.length - framesBefore
    await pageCdp.detach().catch(() => {})
    await browserCdp.detach().catch(() => {})
    const growth = series.at(-1) - series[0]
    Object.assign(figures, {
      imgMemoryStart: series[0],
      imgMemoryEnd: series.at(-1),
      imgSoakFrames: frames,
    })
    record(
      `MJPEG <img>: Chromium's memory stays flat over ${ImgSoakMs / 1000} s of the ${SourceFps} fps test pattern`,
      growth < ImgMemoryGrowthLimit && frames >= 0.5 * SourceFps * (ImgSoakMs / 1000),
      `anonymous memory of all its processes ${series.map(mib).join(', ')}; ` +
        `${frames} pictures drawn in ${ImgSoakMs / 1000} s`,
    )
  }

  await page.close()
  await framecast.stop()
  figures.imgChecksSeconds = (Date.now() - startedAt) / 1000
}

/**
 * Runs in the page: every animation frame, draws each <img> with an id small on a canvas and logs in
 * `__imgSeen[id]` when its picture changes (`at` in ms since the epoch, `rgb` at the centre), its natural size,
 * and an error if its pixels cannot be read.
 */
function watchImages() {
  const canvas = document.createElement('canvas')
  canvas.width = 64
  canvas.height = 48
  const context = canvas.getContext('2d', { willReadFrequently: true })
  const seen = {}
  globalThis.__imgSeen = seen
  const tick = () => {
    for (const image of document.images) {
      if (!image.id || image.naturalWidth === 0) continue
      const log = (seen[image.id] ??= { changes: [], error: null, width: 0, height: 0, hash: null })
      log.width = image.naturalWidth
      log.height = image.naturalHeight
      try {
        context.drawImage(image, 0, 0, canvas.width, canvas.height)
        const { data } = context.getImageData(0, 0, canvas.width, canvas.height)
        let hash = 0
        for (let i = 0; i < data.length; i += 4) hash = (hash * 31 + data[i] + 3 * data[i + 1] + 7 * data[i + 2]) >>> 0
        if (hash !== log.hash) {
          const centre = ((canvas.height / 2) * canvas.width + canvas.width / 2) * 4
          log.changes.push({ at: Date.now(), rgb: [data[centre], data[centre + 1], data[centre + 2]] })
          log.hash = hash
        }
      } catch (error) {
        log.error = `${error.name}: ${error.message}`
      }
    }
    requestAnimationFrame(tick)
  }
  requestAnimationFrame(tick)
}

/** Adds an <img crossorigin="anonymous"> to the page for each `{ id: src }`. */
async function addImages(page, sources) {
  await page.evaluate(sources => {
    for (const [id, src] of Object.entries(sources)) {
      const image = document.createElement('img')
      image.id = id
      image.crossOrigin = 'anonymous'
      image.src = src
      document.body.append(image)
    }
  }, sources)
}

/** A JPEG of each of ImgColours, ImgWidth x ImgHeight, made by the page's canvas. */
async function solidJpegs(page) {
  const encoded = await page.evaluate(
    ({ colours, width, height }) =>
      Object.fromEntries(
        Object.entries(colours).map(([name, [r, g, b]]) => {
          const canvas = document.createElement('canvas')
          canvas.width = width
          canvas.height = height
          const context = canvas.getContext('2d')
          context.fillStyle = `rgb(${r}, ${g}, ${b})`
          context.fillRect(0, 0, width, height)
          return [name, canvas.toDataURL('image/jpeg', 0.9).split(',')[1]]
        }),
      ),
    { colours: ImgColours, width: ImgWidth, height: ImgHeight },
  )
  return Object.fromEntries(Object.entries(encoded).map(([name, base64]) => [name, Buffer.from(base64, 'base64')]))
}

/** Publishes one JPEG to `stream` with POST /frames. */
async function pushJpeg(framecastUrl, stream, jpeg) {
  const response = await fetch(`${framecastUrl}/frames?stream=${stream}`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: jpeg,
    signal: AbortSignal.timeout(2_000),
  })
  if (!response.ok) throw new Error(`POST /frames answered ${response.status}: ${await response.text()}`)
}

/** The name of the ImgColours entry nearest to `rgb`, or the rgb itself when none is near. */
function nearestColour([r, g, b]) {
  let best = null
  let bestDistance = Infinity
  for (const [name, [cr, cg, cb]] of Object.entries(ImgColours)) {
    const distance = Math.abs(r - cr) + Math.abs(g - cg) + Math.abs(b - cb)
    if (distance < bestDistance) [best, bestDistance] = [name, distance]
  }
  return bestDistance <= 60 ? best : `rgb(${r},${g},${b})`
}

/** The colours an <img> showed between `from` and `to`, each change once. */
function colourRun(seen, from, to) {
  const run = []
  for (const change of seen?.changes ?? []) {
    const name = nearestColour(change.rgb)
    if (change.at >= from && change.at <= to && run.at(-1) !== name) run.push(name)
  }
  return run
}

/**
 * Where each colour `shown` matches `pushed` (whose first entry was pushed before the burst), in order and
 * some frames left out; `null` if `shown` has anything out of order or never pushed.
 */
function matchRun(shown, pushed) {
  const matched = []
  let next = 0
  for (const name of shown) {
    while (next < pushed.length && pushed[next] !== name) next += 1
    if (next === pushed.length) return null
    matched.push(next)
    next += 1
  }
  return matched
}

/** How many frames of the burst (after `pushed[0]`) an <img> showed in order; 0 if anything was out of order. */
function burstShown(shown, pushed) {
  return matchRun(shown, pushed)?.filter(index => index > 0).length ?? 0
}

function describeRun(shown, pushed) {
  const order = matchRun(shown, pushed) === null ? 'NOT in the order pushed' : 'in the order pushed'
  return `${burstShown(shown, pushed)} of the ${pushed.length - 1} frames pushed, ${order} (${shown.join(' ') || 'nothing'})`
}

/** What an <img> shows now: a colour name, or that it shows nothing. */
function showing(seen) {
  const last = seen?.changes.at(-1)
  return last ? nearestColour(last.rgb) : 'nothing (naturalWidth 0)'
}

function describeImage(seen) {
  if (seen === null) return 'never drawn (naturalWidth 0)'
  return `${seen.width}x${seen.height}, pixels ${seen.error === null ? 'readable' : `NOT readable (${seen.error})`}`
}

/** Resident anonymous memory of all Chromium's processes together (Linux's /proc), in bytes. */
async function chromiumMemory(browserCdp) {
  const { processInfo } = await browserCdp.send('SystemInfo.getProcessInfo')
  let total = 0
  for (const { id } of processInfo) {
    const status = await readFile(`/proc/${id}/status`, 'utf8').catch(() => '')
    total += Number(/^RssAnon:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024
  }
  return total
}

async function cleanup() {
  while (cleanups.length > 0) {
    const stop = cleanups.pop()
    await Promise.race([Promise.resolve().then(stop).catch(() => {}), sleep(5_000)])
  }
}

function summary() {
  const failed = checks.filter(c => c.ok === false)
  const passed = checks.filter(c => c.ok === true)
  const skipped = checks.filter(c => c.ok === null)
  process.stdout.write('\n=== framecast browser test ===\n')
  for (const c of checks) process.stdout.write(`${c.ok === null ? 'SKIP' : c.ok ? 'PASS' : 'FAIL'}  ${c.name}\n`)
  if (figures.fps !== undefined) {
    process.stdout.write(
      `\nfigures: fps ${figures.fps} (source ${SourceFps}); JS heap ${figures.heapStart ? mib(figures.heapStart) : '?'} -> ${figures.heapEnd ? mib(figures.heapEnd) : '?'} over ${figures.soakSeconds ?? '?'} s` +
        ` (${figures.framesInSoak ?? '?'} frames, ${figures.droppedInSoak ?? '?'} dropped, delay ~${figures.delayMs ?? '?'} ms);` +
        ` bitmaps ${JSON.stringify(figures.bitmaps ?? {})}; shutdown ${figures.shutdownMs ?? '?'} ms\n`,
    )
  }
  if (figures.wallLiveMs !== undefined) {
    process.stdout.write(
      `camera wall: ${WallTiles} tiles live after ${figures.wallLiveMs} ms, ${figures.wallViewers ?? '?'} viewer connection(s); ` +
        `JS heap ${figures.wallHeapStart ? mib(figures.wallHeapStart) : '?'} -> ${figures.wallHeapEnd ? mib(figures.wallHeapEnd) : '?'} over ${SoakMs / 1000} s ` +
        `(${figures.wallFramesInSoak ?? '?'} frames); bitmaps ${JSON.stringify(figures.wallBitmaps ?? {})}; ` +
        `longest gap between pictures on a tile while re-subscribing ${figures.wallRemovalGapMs ?? '?'} ms; wall checks took ${figures.wallChecksSeconds ?? '?'} s\n`,
    )
  }
  if (figures.h2LiveMs !== undefined) {
    process.stdout.write(
      `HTTPS wall: ${WallTiles} tiles on their own hooks live after ${figures.h2LiveMs} ms; /events over ${figures.h2Protocols?.join(', ') || '?'}, ` +
        `${figures.h2Connections ?? '?'} connection(s) in Chromium, ${figures.h2TcpConnections ?? '?'} TCP connection(s), ` +
        `${figures.h2Viewers ?? '?'} viewers on the server; TLS ${figures.h2Tls || '?'}; took ${figures.h2ChecksSeconds ?? '?'} s\n`,
    )
  }
  if (figures.tokensFetched !== undefined) {
    process.stdout.write(
      `access tokens: ${figures.tokensFetched} tokens of ${TokenTtlSeconds} s in ${TokenWatchMs / 1000} s; ` +
        `longest gap between decoded frames ${figures.tokenDecodeGapMs} ms, canvas still for at most ` +
        `${figures.tokenStillMs} ms (sampled every ~${TokenSampleEveryMs} ms); token checks took ${figures.tokenChecksSeconds ?? '?'} s\n`,
    )
  }
  if (figures.imgChecksSeconds !== undefined) {
    process.stdout.write(
      `MJPEG <img>: last frame on screen after ${figures.imgLastMs ?? '?'} ms (open <img>), ${figures.imgFreshMs ?? '?'} ms (new <img>); ` +
        `Chromium memory ${figures.imgMemoryStart ? mib(figures.imgMemoryStart) : '?'} -> ${figures.imgMemoryEnd ? mib(figures.imgMemoryEnd) : '?'} ` +
        `over ${ImgSoakMs / 1000} s (${figures.imgSoakFrames ?? '?'} pictures); img checks took ${figures.imgChecksSeconds} s\n`,
    )
  }
  if (failed.length > 0 && serverLog.length > 0) {
    process.stdout.write(`\nlast framecast log lines:\n${serverLog.slice(-15).join('\n')}\n`)
  }
  process.stdout.write(`\n${passed.length} passed, ${failed.length} failed${skipped.length ? `, ${skipped.length} skipped` : ''}\n`)
  return failed.length === 0 && passed.length > 0
}

let finished = false
async function finish(code) {
  if (finished) return
  finished = true
  await cleanup()
  process.exit(code)
}

const deadline = setTimeout(() => {
  record('whole run within its deadline', false, `still running after ${RunDeadlineMs / 1000} s`)
  summary()
  void finish(1)
}, RunDeadlineMs)
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void finish(130))

try {
  await run()
} catch (error) {
  record('run', false, error instanceof Error ? error.message : String(error))
}
clearTimeout(deadline)
if (!finished) {
  const ok = summary()
  await finish(ok ? 0 : 1)
}

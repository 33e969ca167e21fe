// Checks the package as an app gets it: `npm pack` (which runs build:lib), then a fresh Vite + React + TypeScript
// app in a temporary folder that installs the tarball and imports FrameStreamProvider, useFrameStream and
// FrameCanvas, and must pass `tsc --noEmit` and `vite build`.
//
// The app takes React, Vite and TypeScript at the versions in package-lock.json, so after `npm ci` here npm
// finds them in its cache (`--prefer-offline`). Prints the time taken and exits non-zero on any failure.
// Env: KEEP_PACKAGE_APP=1 keeps the temporary folder and prints where it is.

import { spawn } from 'node:child_process'
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const WebDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')
/** The whole check must end before this; it usually takes well under a minute with a warm npm cache. */
const DeadlineMs = 180_000
/** What the app installs besides the tarball, at the versions this repository is tested with. */
const AppDependencies = ['react', 'react-dom']
const AppDevDependencies = ['@types/react', '@types/react-dom', '@vitejs/plugin-react', 'typescript', 'vite']

const startedAt = Date.now()
const log = message => process.stdout.write(`[package-test] ${message}\n`)
const seconds = ms => `${(ms / 1000).toFixed(1)} s`

/** Runs a command, failing with its output if it exits non-zero. */
function run(command, args, cwd) {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', text => (output += text))
    child.stderr.on('data', text => (output += text))
    child.once('error', fail)
    child.once('exit', code =>
      code === 0 ? done(output) : fail(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output.trim()}`)),
    )
  })
}

/** A step, timed. */
async function step(name, action) {
  const at = Date.now()
  const result = await action()
  log(`${name}: ${seconds(Date.now() - at)}`)
  return result
}

/** The locked version of each package, so the app installs what web/ is built and tested with. */
async function lockedVersions(names) {
  const lock = JSON.parse(await readFile(join(WebDir, 'package-lock.json'), 'utf8'))
  return Object.fromEntries(
    names.map(name => {
      const version = lock.packages?.[`node_modules/${name}`]?.version
      if (!version) throw new Error(`${name} is not in package-lock.json`)
      return [name, version]
    }),
  )
}

/** The files of a minimal Vite `react-ts` app that uses the package. */
function appFiles(tarball, dependencies, devDependencies) {
  return {
    'package.json': JSON.stringify(
      {
        name: 'framecast-package-check',
        private: true,
        type: 'module',
        dependencies: { 'framecast-web': `file:${tarball}`, ...dependencies },
        devDependencies,
      },
      null,
      2,
    ),
    'tsconfig.json': JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022', 'DOM', 'DOM.Iterable'],
          module: 'ESNext',
          moduleResolution: 'bundler',
          jsx: 'react-jsx',
          strict: true,
          noUnusedLocals: true,
          isolatedModules: true,
          verbatimModuleSyntax: true,
          // Check the package's .d.ts files too, not only the app's code.
          skipLibCheck: false,
          noEmit: true,
          types: [],
        },
        include: ['src'],
      },
      null,
      2,
    ),
    'vite.config.js': `import react from '@vitejs/plugin-react'\nimport { defineConfig } from 'vite'\n\nexport default defineConfig({ plugins: [react()] })\n`,
    'index.html': `<!doctype html>\n<html lang="en">\n  <head><meta charset="utf-8" /><title>framecast package check</title></head>\n  <body>\n    <div id="root"></div>\n    <script type="module" src="/src/main.tsx"></script>\n  </body>\n</html>\n`,
    'src/main.tsx': `import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'

import { App } from './App'

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App streams={['door', 'yard']} />
  </StrictMode>,
)
`,
    'src/App.tsx': `import { FrameCanvas, FrameStreamProvider, useFrameStream, type UseFrameStreamOptions } from 'framecast-web'

function Tile({ stream }: { stream: string }) {
  const live = useFrameStream({ stream, width: 320, fps: 5 })
  return (
    <figure>
      <FrameCanvas frames={live.frames} style={{ width: '100%', height: 'auto' }} />
      <figcaption>
        {stream}: {live.status} · {live.state ?? '–'} · {live.fps} fps · {live.delayMs ?? '–'} ms
        {live.status === 'error' && <button onClick={live.reconnect}>Retry</button>}
      </figcaption>
    </figure>
  )
}

// The package's types are real, not any: a wrong option must not compile.
// @ts-expect-error fps is a number
export const wrong: UseFrameStreamOptions = { fps: 'fast' }

export function App({ streams }: { streams: string[] }) {
  return (
    <FrameStreamProvider url="/events" getHeaders={() => ({ Authorization: 'Bearer token' })}>
      {streams.map(stream => (
        <Tile key={stream} stream={stream} />
      ))}
    </FrameStreamProvider>
  )
}
`,
  }
}

async function check() {
  const work = await mkdtemp(join(tmpdir(), 'framecast-package-'))
  try {
    await step('npm pack (builds dist-lib)', () => run('npm', ['pack', '--pack-destination', work, '--loglevel=warn'], WebDir))
    const tarball = (await readdir(work)).find(name => name.endsWith('.tgz'))
    if (!tarball) throw new Error('npm pack wrote no tarball')
    const listing = (await run('tar', ['-tzf', join(work, tarball)], work)).split('\n').filter(Boolean)
    for (const needed of ['package/package.json', 'package/dist-lib/index.js', 'package/dist-lib/index.d.ts']) {
      if (!listing.includes(needed)) throw new Error(`${tarball} lacks ${needed}: ${listing.join(', ')}`)
    }
    const stray = listing.filter(path => /\.test\.|mockEventServer|^package\/(src|demo|tests)\//.test(path))
    if (stray.length > 0) throw new Error(`${tarball} ships files it should not: ${stray.join(', ')}`)
    log(`${tarball}: ${listing.length} files`)

    const app = join(work, 'app')
    const files = appFiles(
      join(work, tarball),
      await lockedVersions(AppDependencies),
      await lockedVersions(AppDevDependencies),
    )
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(app, path)), { recursive: true })
      await writeFile(join(app, path), text)
    }
    await step('npm install', () =>
      run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app),
    )
    // A React of its own inside the package would break hooks ("Invalid hook call").
    const ownReact = await stat(join(app, 'node_modules/framecast-web/node_modules/react')).then(
      () => true,
      () => false,
    )
    if (ownReact) throw new Error('the installed package brought its own copy of React')
    await step('tsc --noEmit', () => run(join(app, 'node_modules/.bin/tsc'), ['--noEmit', '-p', '.'], app))
    await step('vite build', () => run(join(app, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], app))
    const assets = await readdir(join(app, 'dist/assets'))
    const script = assets.find(name => name.endsWith('.js'))
    const bundle = script ? await readFile(join(app, 'dist/assets', script), 'utf8') : ''
    if (!bundle.includes('/events') || !bundle.includes('text/event-stream')) {
      throw new Error(`the app's bundle (${assets.join(', ')}) does not contain the package`)
    }
    log(`app bundle ${script}: ${(bundle.length / 1024).toFixed(0)} KiB`)
  } finally {
    if (process.env.KEEP_PACKAGE_APP) log(`kept ${work}`)
    else await rm(work, { recursive: true, force: true })
  }
}

const deadline = setTimeout(() => {
  log(`FAIL: still running after ${seconds(DeadlineMs)}`)
  process.exit(1)
}, DeadlineMs)
try {
  await check()
  log(`PASS: the packed tarball installs, typechecks and builds in a fresh Vite + React + TypeScript app (${seconds(Date.now() - startedAt)})`)
  clearTimeout(deadline)
} catch (error) {
  log(`FAIL: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}

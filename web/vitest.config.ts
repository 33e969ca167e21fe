// Unit-test setup: the library's tests run in jsdom; the browser test (tests/browser.mjs) is separate.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
  },
})

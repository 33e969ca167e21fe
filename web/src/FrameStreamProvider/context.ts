// The React context through which hooks find the provider's hub; null outside a provider.

import { createContext } from 'react'

import type { StreamHub } from './streamHub'

export const StreamHubContext = createContext<StreamHub | null>(null)
StreamHubContext.displayName = 'FrameStreamProvider'

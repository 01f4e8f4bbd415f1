// Entrypoint: `bun runtime/main.ts [--modules=all|a,b]` (TIKETI_MODULES is the environment form).
import { REGISTRY } from './modules'
import { serve } from './server'

await serve(REGISTRY)

// Entrypoint of test deployments: TIKETI plus the probe module (runtime/testing/probe.ts).
import { serve } from '../server'
import { REGISTRY_WITH_PROBE } from './probe'

await serve(REGISTRY_WITH_PROBE)

import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { Service } from 'kubernetes-models/v1/Service'
import { MODULE_NAMES } from '../../runtime/modules'

const deploy = join(import.meta.dir, '..', '..', 'deploy')
const compose = Bun.YAML.parse(await Bun.file(join(deploy, 'compose.yaml')).text()) as any
const manifests = (Bun.YAML.parse(await Bun.file(join(deploy, 'k8s', 'tiketi.yaml')).text()) as any[]).flat()

// A module the gateway is not told about answers 404 through it in every deployment.
describe('the gateway in the deploy files', () => {
  test('compose runs it as the entry point, told every module\'s URL', () => {
    const env = compose.services.gateway.environment
    expect(env.TIKETI_MODULES).toBe('gateway')
    for (const name of MODULE_NAMES) expect(env[`${name.toUpperCase()}_URL`]).toBe(`http://${name}:3000`)
    expect(compose.services.gateway.ports).toEqual(['3000:3000'])
  })

  test('compose modules trust exactly the gateway in front of them for the client address', () => {
    for (const name of MODULE_NAMES) expect(compose.services[name].environment.TRUSTED_PROXY_HOPS).toBe('1')
    expect(compose.services.gateway.environment.TRUSTED_PROXY_HOPS).toBeUndefined()
  })

  test('Kubernetes: a valid Deployment and Service, every module\'s URL, probes, draining', () => {
    const deployment = manifests.find((doc) => doc.kind === 'Deployment' && doc.metadata.labels?.module === 'gateway')
    const service = manifests.find((doc) => doc.kind === 'Service' && doc.metadata.name === 'gateway')
    new Deployment(deployment).validate()
    new Service(service).validate()
    const container = deployment.spec.template.spec.containers[0]
    const env = Object.fromEntries(container.env.map((entry: any) => [entry.name, entry.value ?? entry.valueFrom]))
    expect(env.TIKETI_MODULES).toBe('gateway')
    for (const name of MODULE_NAMES) expect(env[`${name.toUpperCase()}_URL`]).toBe(`http://${name}:3000`)
    expect(container.readinessProbe.httpGet.path).toBe('/ready')
    expect(Number(env.DRAIN_DELAY_SECONDS) + 10).toBeLessThanOrEqual(deployment.spec.template.spec.terminationGracePeriodSeconds)
  })
})

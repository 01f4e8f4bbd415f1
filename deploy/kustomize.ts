import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Renders a kustomization the way `kubectl kustomize` does, for the subset deploy/k8s uses, so the tests can check
 * every overlay where no kustomize runs: `resources` (files, or directories with their own kustomization.yaml), `images` (a new
 * name or tag for an image name) and `patches` that are strategic merges, inline or from a file, applied to their `target`'s kind (and name, if given)
 * or else to the resource of the patch's own kind and name. Any other field is refused rather than ignored: a
 * kustomization using more needs this extended first (deploy.test.ts compares the output with kubectl where it exists).
 */
export async function renderKustomization(dir: string): Promise<any[]> {
  const kustomization = Bun.YAML.parse(await Bun.file(join(dir, 'kustomization.yaml')).text()) as any
  const unsupported = Object.keys(kustomization).filter((key) => !['apiVersion', 'kind', 'resources', 'images', 'patches'].includes(key))
  if (unsupported.length > 0) throw new Error(`${dir}/kustomization.yaml: ${unsupported.join(', ')} not supported by the test renderer`)

  const resources: any[] = []
  for (const entry of kustomization.resources ?? []) {
    const path = join(dir, entry)
    if (existsSync(path) && statSync(path).isDirectory()) resources.push(...(await renderKustomization(path)))
    else resources.push(...(await readDocuments(path)))
  }
  for (const entry of kustomization.patches ?? []) {
    const patches = entry.path ? await readDocuments(join(dir, entry.path)) : documents(entry.patch)
    for (const patch of patches) {
      const matches = resources.filter((resource) =>
        entry.target
          ? resource.kind === entry.target.kind && (entry.target.name === undefined || resource.metadata.name === entry.target.name)
          : resource.kind === patch.kind && resource.metadata.name === patch.metadata.name,
      )
      if (matches.length === 0) throw new Error(`${dir}: a patch of ${patch.kind} ${patch.metadata?.name} matches no resource`)
      for (const resource of matches) {
        const { metadata, ...rest } = patch
        // With a target, the patch's own name is a placeholder: the target's resources keep theirs.
        merge(resource, entry.target ? { ...rest, metadata: { ...metadata, name: resource.metadata.name } } : patch)
      }
    }
  }
  for (const image of kustomization.images ?? [])
    for (const resource of resources)
      for (const container of [...(resource.spec?.template?.spec?.initContainers ?? []), ...(resource.spec?.template?.spec?.containers ?? [])]) {
        const [, name, tag] = /^(.+?)(?::([^:/]+))?$/.exec(container.image)!
        if (name === image.name) container.image = [image.newName ?? name, image.newTag ?? tag].filter(Boolean).join(':')
      }
  return resources
}

/** Strategic merge as Kubernetes does it for these fields: maps merge, lists of named items (containers, env) merge by name, other lists are replaced. */
function merge(target: any, patch: any): void {
  for (const [key, value] of Object.entries<any>(patch)) {
    const current = target[key]
    if (isNamedList(current) && isNamedList(value)) {
      for (const item of value) {
        const existing = current.find((candidate: any) => candidate.name === item.name)
        if (existing) merge(existing, item)
        else current.push(structuredClone(item))
      }
    } else if (isMap(current) && isMap(value)) merge(current, value)
    else target[key] = structuredClone(value)
  }
}

const isMap = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
const isNamedList = (value: unknown): value is any[] => Array.isArray(value) && value.length > 0 && value.every((item) => isMap(item) && typeof item.name === 'string')
const documents = (text: string): any[] => [Bun.YAML.parse(text)].flat().filter((doc) => doc)
const readDocuments = async (path: string) => documents(await Bun.file(path).text())

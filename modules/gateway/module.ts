// The gateway's entry: the runtime runs it as a process of its own, and applies its policies in every mode.
export { createGateway, type Gateway } from './gateway'
export { createGatewayPolicies, type GatewayPolicies } from './policies'

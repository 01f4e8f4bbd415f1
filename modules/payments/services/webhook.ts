import { createHmac, timingSafeEqual } from 'node:crypto'

/** Toss-style signed callbacks: `v1:` + base64 HMAC-SHA256(secret, `<body>:<transmission time>`). */
export const SIGNATURE_HEADER = 'tosspayments-webhook-signature'
export const TRANSMISSION_TIME_HEADER = 'tosspayments-webhook-transmission-time'
export const TRANSMISSION_ID_HEADER = 'tosspayments-webhook-transmission-id'
/** A callback older (or further in the future) than this is refused: a replayed capture. */
const MAX_SKEW_MS = 5 * 60_000

export function signWebhook(secret: string, body: string, transmissionTime: string): string {
  return `v1:${createHmac('sha256', secret).update(`${body}:${transmissionTime}`).digest('base64')}`
}

export function webhookSignatureValid(secret: string, body: string, headers: Record<string, string | undefined>, now = Date.now()): boolean {
  const signature = headers[SIGNATURE_HEADER]
  const time = headers[TRANSMISSION_TIME_HEADER]
  if (!signature || !time) return false
  const instant = Date.parse(time)
  if (!Number.isFinite(instant) || Math.abs(now - instant) > MAX_SKEW_MS) return false
  const expected = Buffer.from(signWebhook(secret, body, time))
  const given = Buffer.from(signature)
  return expected.length === given.length && timingSafeEqual(expected, given)
}

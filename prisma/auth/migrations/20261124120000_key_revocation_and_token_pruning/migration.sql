-- Emergency key revocation: a revoked key leaves the JWKS at once.
ALTER TABLE "signing_keys" ADD COLUMN "revoked_at" TIMESTAMPTZ(3);

-- Pruning of refresh tokens that can no longer be used (expired, or revoked a while ago).
CREATE INDEX "refresh_tokens_expires_at_idx" ON "refresh_tokens"("expires_at");
CREATE INDEX "refresh_tokens_revoked_at_idx" ON "refresh_tokens"("revoked_at") WHERE "revoked_at" IS NOT NULL;

-- Key rotation: a new key is published in the JWKS before it signs anything.
ALTER TABLE "signing_keys" ADD COLUMN "not_before" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

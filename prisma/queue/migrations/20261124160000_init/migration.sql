-- queue: sale-rule copies, admission log, signing key, outbox, inbox
CREATE TABLE "rooms" (
    "event_id" UUID NOT NULL,
    "required" BOOLEAN NOT NULL,
    "rate_per_minute" INTEGER,
    "rate_override" INTEGER,
    "per_user_limit" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "sale_start" TIMESTAMPTZ(3) NOT NULL,
    "sale_end" TIMESTAMPTZ(3) NOT NULL,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "deleted" BOOLEAN NOT NULL DEFAULT false,
    "rules_version" INTEGER NOT NULL,
    "status_version" INTEGER NOT NULL,
    "seed" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "rooms_pkey" PRIMARY KEY ("event_id")
);

CREATE TABLE "admissions" (
    "event_id" UUID NOT NULL,
    "serial" INTEGER NOT NULL,
    "user_id" UUID NOT NULL,
    "early" BOOLEAN NOT NULL,
    "admitted_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "admissions_pkey" PRIMARY KEY ("event_id", "serial")
);
CREATE INDEX "admissions_event_id_user_id_idx" ON "admissions"("event_id", "user_id");

CREATE TABLE "signing_keys" (
    "slot" TEXT NOT NULL,
    "kid" TEXT NOT NULL,
    "public_jwk" JSONB NOT NULL,
    "private_jwk" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "signing_keys_pkey" PRIMARY KEY ("slot")
);

CREATE TABLE "outbox" (
    "id" UUID NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "event_name" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),
    CONSTRAINT "outbox_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "outbox_seq_key" ON "outbox"("seq");
CREATE INDEX "outbox_unsent_idx" ON "outbox"("seq") WHERE "sent_at" IS NULL;

CREATE TABLE "inbox" (
    "event_id" UUID NOT NULL,
    "event_name" TEXT NOT NULL,
    "processed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "inbox_pkey" PRIMARY KEY ("event_id")
);

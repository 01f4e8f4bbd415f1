-- payments: payments, idempotency records, point wallets and ledger, webhook dedupe, outbox, inbox
CREATE TABLE "payments" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "purpose" TEXT NOT NULL CHECK ("purpose" IN ('reservation', 'points')),
    "reservation_id" UUID,
    "event_id" UUID,
    "reservation_confirmed" BOOLEAN NOT NULL DEFAULT false,
    "refund_reason" TEXT,
    "order_id" TEXT NOT NULL,
    "order_name" TEXT NOT NULL,
    "amount" INTEGER NOT NULL CHECK ("amount" > 0),
    "card_amount" INTEGER NOT NULL CHECK ("card_amount" >= 0),
    "points_used" INTEGER NOT NULL DEFAULT 0 CHECK ("points_used" >= 0),
    "state" TEXT NOT NULL CHECK ("state" IN ('READY', 'IN_PROGRESS', 'DONE', 'ABORTED', 'EXPIRED', 'CANCELED', 'PARTIAL_CANCELED')),
    "payment_key" TEXT,
    "delayed" BOOLEAN NOT NULL DEFAULT false,
    "canceled_amount" INTEGER NOT NULL DEFAULT 0,
    "failure_code" TEXT,
    "failure_message" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "approved_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "payments_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "payments_split_check" CHECK ("card_amount" + "points_used" = "amount")
);
CREATE UNIQUE INDEX "payments_order_id_key" ON "payments"("order_id");
CREATE INDEX "payments_user_id_created_at_idx" ON "payments"("user_id", "created_at");
CREATE INDEX "payments_reservation_id_idx" ON "payments"("reservation_id");
-- One live payment per reservation: a second prepare gets the first one back.
CREATE UNIQUE INDEX "payments_reservation_live_key" ON "payments"("reservation_id") WHERE "state" IN ('READY', 'IN_PROGRESS', 'DONE', 'PARTIAL_CANCELED');
CREATE INDEX "payments_refund_due_idx" ON "payments"("refund_reason") WHERE "refund_reason" IS NOT NULL AND "state" IN ('DONE', 'PARTIAL_CANCELED');
CREATE INDEX "payments_state_updated_at_idx" ON "payments"("state", "updated_at");

CREATE TABLE "idempotency_keys" (
    "user_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "status" INTEGER,
    "body" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("user_id", "key")
);
CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys"("created_at");

CREATE TABLE "wallets" (
    "user_id" UUID NOT NULL,
    "balance" INTEGER NOT NULL CHECK ("balance" >= 0),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "wallets_pkey" PRIMARY KEY ("user_id")
);

CREATE TABLE "ledger" (
    "id" BIGSERIAL NOT NULL,
    "user_id" UUID NOT NULL,
    "kind" TEXT NOT NULL CHECK ("kind" IN ('CHARGE', 'USE', 'REFUND', 'EXPIRE')),
    "amount" INTEGER NOT NULL,
    "balance_after" INTEGER NOT NULL CHECK ("balance_after" >= 0),
    "payment_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "ledger_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "ledger_payment_id_kind_key" ON "ledger"("payment_id", "kind");
CREATE INDEX "ledger_user_id_id_idx" ON "ledger"("user_id", "id");

CREATE TABLE "webhook_events" (
    "id" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "webhook_events_pkey" PRIMARY KEY ("id")
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

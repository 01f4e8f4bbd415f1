-- reservations: its copy of each event's sellable inventory, holds and reservations, outbox, inbox.

-- The copy of an event's sale rules, with one version per part (see the events contract): deliveries are unordered.
CREATE TABLE "events" (
    "event_id" UUID NOT NULL,
    "title" TEXT NOT NULL DEFAULT '',
    "status" TEXT NOT NULL DEFAULT 'draft',
    "event_date" TIMESTAMPTZ(3),
    "sale_start" TIMESTAMPTZ(3),
    "sale_end" TIMESTAMPTZ(3),
    "per_user_limit" INTEGER NOT NULL DEFAULT 1,
    "queue_required" BOOLEAN NOT NULL DEFAULT false,
    "status_version" INTEGER NOT NULL DEFAULT 0,
    "rules_version" INTEGER NOT NULL DEFAULT 0,
    "inventory_version" INTEGER NOT NULL DEFAULT 0,
    "deleted" BOOLEAN NOT NULL DEFAULT false,
    "sold_out" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "events_pkey" PRIMARY KEY ("event_id")
);

-- One row per seat: a seat points at no more than one reservation, so it cannot be booked twice.
CREATE TABLE "seats" (
    "id" UUID NOT NULL,
    "event_id" UUID NOT NULL,
    "ordinal" INTEGER NOT NULL,
    "label" TEXT NOT NULL,
    "section" TEXT NOT NULL,
    "row" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "price" INTEGER NOT NULL,
    "blocked" BOOLEAN NOT NULL DEFAULT false,
    "state" TEXT NOT NULL DEFAULT 'available' CHECK ("state" IN ('available', 'held', 'sold')),
    "reservation_id" UUID,
    "held_until" TIMESTAMPTZ(3),
    CONSTRAINT "seats_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "seats_owned_when_taken" CHECK (("state" = 'available') = ("reservation_id" IS NULL)),
    CONSTRAINT "seats_hold_has_expiry" CHECK (("state" = 'held') = ("held_until" IS NOT NULL))
);
CREATE INDEX "seats_event_id_ordinal_idx" ON "seats"("event_id", "ordinal");
CREATE INDEX "seats_reservation_id_idx" ON "seats"("reservation_id") WHERE "reservation_id" IS NOT NULL;
CREATE INDEX "seats_available_idx" ON "seats"("event_id") WHERE "state" = 'available' AND NOT "blocked";
CREATE INDEX "seats_held_until_idx" ON "seats"("event_id", "held_until") WHERE "state" = 'held';

-- General admission: counters guarded by a constraint, so a ticket type cannot be oversold whatever the code does.
CREATE TABLE "ticket_types" (
    "id" UUID NOT NULL,
    "event_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "price" INTEGER NOT NULL,
    "quantity" INTEGER NOT NULL,
    "held" INTEGER NOT NULL DEFAULT 0,
    "sold" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "ticket_types_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "ticket_types_never_oversold" CHECK ("held" >= 0 AND "sold" >= 0 AND "held" + "sold" <= "quantity")
);
CREATE INDEX "ticket_types_event_id_idx" ON "ticket_types"("event_id");

CREATE TABLE "reservations" (
    "id" UUID NOT NULL,
    "number" TEXT NOT NULL,
    "event_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "state" TEXT NOT NULL CHECK ("state" IN ('pending', 'confirmed', 'expired', 'cancelled')),
    "seat_ids" UUID[] NOT NULL DEFAULT '{}',
    "ticket_type_id" UUID,
    "quantity" INTEGER NOT NULL CHECK ("quantity" > 0),
    "amount" INTEGER NOT NULL CHECK ("amount" >= 0),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "extended" BOOLEAN NOT NULL DEFAULT false,
    "payment_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "confirmed_at" TIMESTAMPTZ(3),
    "closed_at" TIMESTAMPTZ(3),
    CONSTRAINT "reservations_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "reservations_number_key" ON "reservations"("number");
CREATE INDEX "reservations_user_id_event_id_idx" ON "reservations"("user_id", "event_id");
CREATE INDEX "reservations_pending_expiry_idx" ON "reservations"("expires_at") WHERE "state" = 'pending';
CREATE INDEX "reservations_event_id_idx" ON "reservations"("event_id");

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

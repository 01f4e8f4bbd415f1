-- events: catalogue, seat maps, ticket types, news, outbox, inbox
CREATE TABLE "events" (
    "id" UUID NOT NULL,
    "title" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "venue" TEXT NOT NULL,
    "address" TEXT NOT NULL DEFAULT '',
    "artist" TEXT NOT NULL DEFAULT '',
    "poster_url" TEXT,
    "event_date" TIMESTAMPTZ(3) NOT NULL,
    "sale_start" TIMESTAMPTZ(3) NOT NULL,
    "sale_end" TIMESTAMPTZ(3) NOT NULL,
    "status" TEXT NOT NULL CHECK ("status" IN ('draft', 'upcoming', 'on_sale', 'sold_out', 'closed', 'ended', 'cancelled')),
    "status_changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "queue_required" BOOLEAN NOT NULL DEFAULT false,
    "admission_rate_per_minute" INTEGER,
    "per_user_limit" INTEGER NOT NULL CHECK ("per_user_limit" >= 1),
    "price_tiers" JSONB NOT NULL DEFAULT '[]',
    "sections" JSONB NOT NULL DEFAULT '[]',
    "seat_count" INTEGER NOT NULL DEFAULT 0,
    "min_price" INTEGER,
    "max_price" INTEGER,
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "events_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "events_schedule_check" CHECK ("sale_start" < "sale_end" AND "sale_end" <= "event_date")
);
CREATE INDEX "events_status_event_date_idx" ON "events"("status", "event_date");

CREATE TABLE "seats" (
    "id" UUID NOT NULL,
    "event_id" UUID NOT NULL REFERENCES "events"("id") ON DELETE CASCADE,
    "label" TEXT NOT NULL,
    "section" TEXT NOT NULL,
    "row" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "price_tier" TEXT NOT NULL,
    "price" INTEGER NOT NULL CHECK ("price" >= 0),
    "blocked" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "seats_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "seats_event_id_label_key" ON "seats"("event_id", "label");

CREATE TABLE "ticket_types" (
    "id" UUID NOT NULL,
    "event_id" UUID NOT NULL REFERENCES "events"("id") ON DELETE CASCADE,
    "name" TEXT NOT NULL,
    "price" INTEGER NOT NULL CHECK ("price" >= 0),
    "quantity" INTEGER NOT NULL CHECK ("quantity" >= 1),
    "sort_order" INTEGER NOT NULL,
    CONSTRAINT "ticket_types_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "ticket_types_event_id_name_key" ON "ticket_types"("event_id", "name");

CREATE TABLE "news" (
    "id" UUID NOT NULL,
    "title" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "pinned" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "news_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "news_pinned_created_at_idx" ON "news"("pinned", "created_at");

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

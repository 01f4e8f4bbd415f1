-- A draft that buyers once saw (published, then taken back) announces its deletion, so copies drop it.
ALTER TABLE "events" ADD COLUMN "ever_published" BOOLEAN NOT NULL DEFAULT false;
UPDATE "events" SET "ever_published" = true
WHERE "status" <> 'draft'
   OR "id" IN (SELECT ("payload"->>'eventId')::uuid FROM "outbox" WHERE "event_name" = 'event.published.v1');

-- Why a published event was cancelled (for the notifications to buyers).
ALTER TABLE "events" ADD COLUMN "cancel_reason" TEXT;

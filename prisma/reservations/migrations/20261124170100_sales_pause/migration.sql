-- The oversell monitor pauses an event's sales when it finds a seat or ticket sold twice.
ALTER TABLE "events" ADD COLUMN "sales_paused_at" TIMESTAMPTZ(3);
ALTER TABLE "events" ADD COLUMN "pause_reason" TEXT;

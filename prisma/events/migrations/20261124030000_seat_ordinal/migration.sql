-- Seats keep the order of the submitted layout (section, row, seat), so "10" no longer sorts before "2".
ALTER TABLE "seats" ADD COLUMN "ordinal" INTEGER NOT NULL DEFAULT 0;
CREATE INDEX "seats_event_id_ordinal_idx" ON "seats"("event_id", "ordinal");

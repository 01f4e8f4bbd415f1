-- The newest sold-out/restocked announcement applied (reservations' sequence): older deliveries are ignored.
ALTER TABLE "events" ADD COLUMN "availability_seq" INTEGER NOT NULL DEFAULT 0;

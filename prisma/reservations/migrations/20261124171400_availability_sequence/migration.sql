-- Each sold-out/restocked announcement takes the next number, so consumers apply only the newest.
ALTER TABLE "events" ADD COLUMN "availability_seq" INTEGER NOT NULL DEFAULT 0;

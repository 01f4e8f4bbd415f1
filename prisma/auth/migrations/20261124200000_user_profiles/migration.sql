-- User profiles: name (required), phone (E.164, optional), locale; a version per user that orders its events;
-- deleted accounts stay as anonymised rows so other modules' records keep their user id.
ALTER TABLE "users" ADD COLUMN "name" TEXT;
-- Existing accounts are named after their email's local part (at most 50 characters) until they choose a name.
UPDATE "users" SET "name" = left(split_part("email", '@', 1), 50);
ALTER TABLE "users" ALTER COLUMN "name" SET NOT NULL;
ALTER TABLE "users" ADD COLUMN "phone" TEXT;
ALTER TABLE "users" ADD COLUMN "locale" TEXT NOT NULL DEFAULT 'ko';
ALTER TABLE "users" ADD COLUMN "version" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "users" ADD COLUMN "deleted_at" TIMESTAMPTZ(3);

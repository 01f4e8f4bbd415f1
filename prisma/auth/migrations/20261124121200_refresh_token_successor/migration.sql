-- Refresh reuse grace: a rotated token knows the token that replaced it.
ALTER TABLE "refresh_tokens" ADD COLUMN "replaced_by" UUID;

-- Seats written before 20261124030000_seat_ordinal all got ordinal 0, so their order was arbitrary. Their layout
-- order was not recorded; the best that can be recovered is section, then row (numeric rows as numbers), then seat.
-- Events whose seats already carry distinct ordinals are left alone.
UPDATE "seats" AS s
SET "ordinal" = ordered.position - 1
FROM (
    SELECT "id", row_number() OVER (
        PARTITION BY "event_id"
        ORDER BY "section", ("row" !~ '^[0-9]+$'), CASE WHEN "row" ~ '^[0-9]{1,9}$' THEN "row"::int END, "row", "number"
    ) AS position
    FROM "seats"
    WHERE "event_id" IN (SELECT "event_id" FROM "seats" GROUP BY "event_id" HAVING max("ordinal") = 0 AND count(*) > 1)
) AS ordered
WHERE s."id" = ordered."id";

-- Note: the migrator runs each migration in a transaction, where CREATE INDEX CONCURRENTLY is refused, so an index
-- added by a migration (seats_event_id_ordinal_idx of 20261124030000) locks its table against writes while it builds.
-- For a large live table, build the index by hand first with CREATE INDEX CONCURRENTLY, and write the migration's
-- statement as CREATE INDEX IF NOT EXISTS so that it then does nothing.

-- queue: a waiting room activated by the crowd (more active shoppers than QUEUE_AUTO_THRESHOLD), on until the sale is over
ALTER TABLE "rooms" ADD COLUMN "auto_activated_at" TIMESTAMPTZ(3);

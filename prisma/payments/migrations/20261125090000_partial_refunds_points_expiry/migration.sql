-- payments: an admin's partial refund in flight (recorded before the provider is called; one at a time per payment)
ALTER TABLE "payments"."payments" ADD COLUMN "partial_refund_amount" INTEGER CHECK ("partial_refund_amount" > 0);
ALTER TABLE "payments"."payments" ADD COLUMN "partial_refund_reason" TEXT;
-- The points expiry sweep looks for charges older than the period.
CREATE INDEX "ledger_charges_created_at_idx" ON "payments"."ledger"("created_at") WHERE "kind" = 'CHARGE';

-- 0003: SDG overrides (docs/sync-protocol.md, "SDG overrides"): the
-- emergency overrides of SDG routes in force on each appliance, as it last
-- reported them. One row per appliance, replaced by each report:
--
--   override_reports  the report's Idempotency-Key (a hash of its content:
--                     a report sent again with it is answered without a
--                     write), its overrides as a JSON array (each item as
--                     sent, compacted), how many, and when it came.
--
-- appliances.hello_overrides is how many overrides the appliance's last
-- hello said were in force (NULL: an appliance that does not say).
CREATE TABLE override_reports (
    appliance   TEXT PRIMARY KEY,
    key         TEXT NOT NULL,
    overrides   TEXT NOT NULL,
    count       INTEGER NOT NULL,
    reported_ms INTEGER NOT NULL
) STRICT;

ALTER TABLE appliances ADD COLUMN hello_overrides INTEGER;

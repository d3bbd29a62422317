-- 0006: per-site outbound (toll-fraud) policies and SRTP toward trunks,
-- extensions of the snapshot (docs/architecture.md, "Extensions to the
-- contract").
--
-- sites.outbound is the site's "outbound" object as canonical JSON
-- (account.Outbound marshalled), NULL when the site has none (the default
-- policy). trunks.srtp is the trunk's "srtp" setting as written: '' when
-- absent (plain RTP), 'off' or 'sdes'.
ALTER TABLE sites ADD COLUMN outbound TEXT;

ALTER TABLE trunks ADD COLUMN srtp TEXT NOT NULL DEFAULT '';

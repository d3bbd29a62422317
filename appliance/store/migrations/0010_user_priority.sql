-- 0010: users' admission priority (users[].priority, an extension of the
-- contract): "" (normal), "normal", "emergency" or "common_area". Phones of
-- emergency and common-area users may use the last part of a site's
-- capacity that normal users may not (appliance/registrar).
ALTER TABLE users ADD COLUMN priority TEXT NOT NULL DEFAULT '';

-- every setting exists with its documented default and context
SELECT name, setting, unit, context, boot_val
  FROM pg_settings WHERE name LIKE 'pg_hamonitor.%' ORDER BY name;
SHOW pg_hamonitor.probe_interval;
SHOW pg_hamonitor.history_retention;
-- the prefix is reserved: a misspelt setting is refused
SET pg_hamonitor.probe_intervall = '1s';
-- SIGHUP settings cannot be changed in a session
SET pg_hamonitor.probe_interval = '5s';
-- bounds are enforced
ALTER SYSTEM SET pg_hamonitor.probe_interval = '1ms';
ALTER SYSTEM SET pg_hamonitor.history_purge_batch = 0;

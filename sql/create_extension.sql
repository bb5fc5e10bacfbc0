-- the extension installs into its own schema, with its catalog empty
CREATE EXTENSION pg_hamonitor;
SELECT extname, extversion, extrelocatable
  FROM pg_extension WHERE extname = 'pg_hamonitor';
-- the schema belongs to the extension
SELECT pg_describe_object(classid, objid, objsubid)
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_hamonitor')
   AND classid = 'pg_namespace'::regclass;
SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'hamonitor' AND c.relkind IN ('r', 'v')
 ORDER BY c.relname;
SELECT count(*) FROM hamonitor.status;
SELECT count(*) FROM hamonitor.events;
-- not relocatable
ALTER EXTENSION pg_hamonitor SET SCHEMA public;

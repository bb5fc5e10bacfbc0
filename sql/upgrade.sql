-- 1.0 -> 1.1: an installed 1.0 with registered nodes updates in place
CREATE EXTENSION pg_hamonitor VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'pg_hamonitor';
SELECT hamonitor.register_node('db-1', 'host=127.0.0.1 port=1 password=secret', 'up');
SELECT hamonitor.register_node('DB_1', 'host=127.0.0.1 port=2', 'up');
SELECT hamonitor.register_node('other', 'host=127.0.0.1 port=3', 'up2', 0);
ALTER EXTENSION pg_hamonitor UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'pg_hamonitor';
-- the registry survives, secrets still masked
SELECT cluster_name, node_name, conninfo, priority FROM hamonitor.status
 ORDER BY cluster_name, node_name;
SELECT kind, count(*) FROM hamonitor.events GROUP BY kind ORDER BY kind;
-- managed slot names: 1.0 gave "db-1" and "DB_1" the same one; the first
-- registered keeps it (no slot is renamed), the other gets its own
SELECT cluster_name, node_name, slot_name FROM hamonitor.node
 ORDER BY node_id;
-- every function of the extension runs with a pinned search_path
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'hamonitor'
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
 ORDER BY 1;
-- what the update built is what a fresh install builds: objects, columns,
-- function and view definitions
CREATE FUNCTION pg_temp.fingerprint() RETURNS TABLE (object text, definition text)
LANGUAGE sql AS $$
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
       CASE d.classid
            WHEN 'pg_proc'::regclass THEN md5(pg_get_functiondef(d.objid))
            WHEN 'pg_class'::regclass THEN
                 md5(coalesce(pg_get_viewdef(d.objid),
                     (SELECT string_agg(format('%s %s %s %s', a.attname,
                                               format_type(a.atttypid, a.atttypmod),
                                               a.attnotnull,
                                               pg_get_expr(ad.adbin, ad.adrelid)),
                                        ', ' ORDER BY a.attnum)
                        FROM pg_attribute a
                        LEFT JOIN pg_attrdef ad
                               ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                       WHERE a.attrelid = d.objid AND a.attnum > 0
                         AND NOT a.attisdropped)))
       END AS definition
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_hamonitor')
$$;
CREATE TEMP TABLE upgraded AS SELECT * FROM pg_temp.fingerprint();
DROP EXTENSION pg_hamonitor;
CREATE EXTENSION pg_hamonitor;
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.fingerprint();
SELECT count(*) > 0 AS has_objects FROM fresh;
(SELECT 'only after update' AS side, * FROM upgraded EXCEPT SELECT 'only after update', * FROM fresh)
UNION ALL
(SELECT 'only when fresh', * FROM fresh EXCEPT SELECT 'only when fresh', * FROM upgraded)
ORDER BY 1, 2;
DROP EXTENSION pg_hamonitor;

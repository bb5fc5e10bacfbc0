-- dropping the extension removes its schema with every table and view
DROP EXTENSION pg_hamonitor;
SELECT count(*) FROM pg_namespace WHERE nspname = 'hamonitor';
-- and it installs again cleanly
CREATE EXTENSION pg_hamonitor;
SELECT hamonitor.register_node('again', 'host=127.0.0.1 port=1');
DROP EXTENSION pg_hamonitor;
SELECT count(*) FROM pg_namespace WHERE nspname = 'hamonitor';

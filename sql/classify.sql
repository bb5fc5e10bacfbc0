-- what a failed contact says about a peer's postmaster (src/classify.c):
-- the SQLSTATE wherever the server sent one, else the text
SELECT sqlstate, message, hamonitor.classify_failure(sqlstate, message)
  FROM (VALUES
    -- a backend's goodbye: 57P01 is a shutdown, or a dead postmaster
    ('57P01', 'terminating connection due to administrator command'),
    ('57P01', 'terminating connection due to immediate shutdown command'),
    ('57P01', 'terminating connection due to unexpected postmaster exit'),
    -- the crash-restart announced as a WARNING since PostgreSQL 14
    ('57P02', 'terminating connection because of crash of another server process'),
    ('57P03', 'the database system is starting up'),
    ('57P03', 'the database system is shutting down'),
    ('53300', 'sorry, too many clients already'),
    ('28P01', 'password authentication failed for user "hamonitor"'),
    ('28000', 'no pg_hba.conf entry for host "127.0.0.1"'),
    ('42501', 'permission denied for function pg_control_system'),
    ('57014', 'canceling statement due to statement timeout'),
    ('XX000', 'anything else a server says'),
    -- a failed connection: libpq gives the text only
    (NULL, 'connection to server at "10.0.0.1", port 5432 failed: Connection refused'),
    (NULL, 'could not connect: connection to server on socket "/tmp/.s.PGSQL.5432" failed: No such file or directory'),
    (NULL, 'could not translate host name "nosuch" to address: Name or service not known'),
    (NULL, 'connection lost during probe: server closed the connection unexpectedly'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is starting up'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is not yet accepting connections'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is in recovery mode'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is shutting down'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  sorry, too many clients already'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  remaining connection slots are reserved for non-replication superuser connections'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "x"'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: fe_sendauth: no password supplied'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "x" is not permitted to log in'),
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "x" does not exist'),
    -- a translated server message is not understood: no evidence either way
    (NULL, 'could not connect: connection to server at "127.0.0.1", port 5432 failed: FATAL:  das Datenbanksystem startet'),
    -- the witness's own deadlines and troubles
    (NULL, 'probe timed out'),
    (NULL, 'timeout expired while connecting'),
    (NULL, 'invalid connection string'),
    (NULL, 'no file descriptor left for another peer connection; raise max_files_per_process or pg_hamonitor.workers'),
    (NULL, NULL)
  ) AS f(sqlstate, message);
-- a SQLSTATE has five characters
SELECT hamonitor.classify_failure('57P0', 'x');
-- anyone may call it, as simulate_failover
SELECT has_function_privilege('public', 'hamonitor.classify_failure(text, text)', 'EXECUTE');

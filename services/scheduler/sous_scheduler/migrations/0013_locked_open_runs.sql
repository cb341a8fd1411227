-- Admission's locks and counts in one round trip. The counts must see every admission
-- that held a lock before this one took it, so they are made after the locks are held:
-- each query of a volatile function takes a snapshot of its own, where one statement
-- that took a lock and counted would count on a snapshot from before the lock.
-- Lock names are hashed within the schema: advisory locks are the whole database's, and
-- schedulers on two schemas of one database must not wait for each other's admissions.
CREATE FUNCTION locked_open_runs(
    keys text[], domains text[], recipes text[], variations text[], besides uuid[]
) RETURNS TABLE (running bigint, queued bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(keys, 1), 0) LOOP
        PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '/' || keys[i]));
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(keys, 1), 0) LOOP
        RETURN QUERY
            SELECT count(*) FILTER (WHERE r.phase = 'running'),
                   count(*) FILTER (WHERE r.phase = 'queued' AND r.id IS DISTINCT FROM besides[i])
            FROM runs r
            WHERE r.domain = domains[i] AND r.recipe = recipes[i]
              AND r.variation = variations[i] AND r.phase IN ('queued', 'running');
    END LOOP;
END
$$;

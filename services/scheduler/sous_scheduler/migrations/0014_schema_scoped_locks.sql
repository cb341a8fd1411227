-- Admission locks are named within the schema: advisory locks are shared by the whole
-- database, and two schedulers on one database (two meshes, or a test beside a mesh) must
-- not wait for each other's admissions of a variation with the same name.
CREATE OR REPLACE FUNCTION locked_open_runs(
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

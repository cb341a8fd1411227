-- Fails the statement that calls it unless every check holds: a write made "at once"
-- (one statement, no transaction around it) expects its rows to be as it read them, and
-- undoes itself as a whole when one changed. The SQLSTATE is a serialization failure's,
-- which is what it is: another transaction got there first.
CREATE FUNCTION statement_expected(checks boolean[]) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF false = ANY (checks) THEN
        RAISE EXCEPTION 'rows changed under a statement that expected them as they were'
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN true;
END
$$;

-- The validated source of a recipe (ingredients not yet expanded), so later applies of other
-- domains can still see which ingredient versions it uses. Absent after a changelog rebuild.
ALTER TABLE entities ADD COLUMN source jsonb;

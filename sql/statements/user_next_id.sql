-- The id the next sign-up takes (a token names its user, so it is made
-- before the row); an id left unused by a refused sign-up is only a gap.
SELECT nextval(pg_get_serial_sequence('users', 'id')) AS id

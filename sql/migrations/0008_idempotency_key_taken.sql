-- Two instances given one Idempotency-Key at the same moment (issue 14).
-- Each process claims its keys in its own memory, so two different
-- requests under one key can both reach the database. Their records are
-- written in their effects' transactions; the second record's insert waits
-- for the first transaction and then finds the key taken. Its effect must
-- not commit then: a granting statement calls this to fail its own
-- transaction, and the server answers from the first request's record
-- (a replay, or 422 idempotency_key_reused). SQLSTATE RSK01 is ours; the
-- detail is the key's hash, so that a group statement can say which of
-- its requests it was.
CREATE FUNCTION reservd_idempotency_key_taken(p_key_hash text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the Idempotency-Key is recorded by another request'
        USING ERRCODE = 'RSK01', DETAIL = p_key_hash;
END
$$;

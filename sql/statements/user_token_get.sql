-- The SHA-256 (hex) of user $1's token; no row when the user has none.
SELECT token_sha256 FROM user_tokens WHERE user_id = $1

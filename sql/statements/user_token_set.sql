-- Replace user $1's token by the one whose SHA-256 (hex) is $2; no row when
-- there is no such user.
INSERT INTO user_tokens AS t (user_id, token_sha256)
SELECT u.id, $2 FROM users u WHERE u.id = $1
ON CONFLICT (user_id) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256, created_at = now()
RETURNING t.user_id
